// Holds threads back until all are ready, so their work overlaps as much as
// the machine allows instead of running one after another.
#pragma once

#include <condition_variable>
#include <mutex>

namespace rdna1::testing {

class StartGate {
public:
  explicit StartGate(int parties) : waiting_(parties) {}

  void arriveAndWait() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (--waiting_ == 0)
      opened_.notify_all();
    else
      opened_.wait(lock, [this] { return waiting_ == 0; });
  }

private:
  std::mutex mutex_;
  std::condition_variable opened_;
  int waiting_;
};

} // namespace rdna1::testing
