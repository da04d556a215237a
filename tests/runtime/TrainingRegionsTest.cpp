// The runtime's choice of training copy (TrainingRegions.h) on a machine
// without a GPU: the CPU takes `auto`, RDNA1_TRAIN_REGIONS forces either copy
// or fails with a one-line message, and each answer is counted.
#include "TrainingRegions.h"
#include "Counters.h"

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace {

class TrainingRegionsTest : public ::testing::Test {
protected:
  void SetUp() override {
    ::unsetenv("RDNA1_TRAIN_REGIONS");
    rdna1::Counters::get().reset();
  }
  void TearDown() override { ::unsetenv("RDNA1_TRAIN_REGIONS"); }

  static int64_t conv() { return rdna1::Counters::get().convRegionTrainings.load(); }
  static int64_t autoRegions() { return rdna1::Counters::get().autoRegionTrainings.load(); }
};

TEST_F(TrainingRegionsTest, TheCpuTakesAutoAndHasNoBus) {
  EXPECT_FALSE(rdna1::trainWithConvRegions(c10::Device(c10::kCPU)));
  EXPECT_FALSE(rdna1::trainWithConvRegions(std::nullopt)); // a forward without tensor arguments
  EXPECT_EQ(rdna1::busBandwidth(c10::Device(c10::kCPU)), 0.0);
  EXPECT_EQ(autoRegions(), 2);
  EXPECT_EQ(conv(), 0);
}

TEST_F(TrainingRegionsTest, EnvironmentForcesEitherCopy) {
  ::setenv("RDNA1_TRAIN_REGIONS", "conv", 1);
  EXPECT_TRUE(rdna1::trainWithConvRegions(c10::Device(c10::kCPU)));
  EXPECT_TRUE(rdna1::trainWithConvRegions(std::nullopt));
  ::setenv("RDNA1_TRAIN_REGIONS", "auto", 1);
  EXPECT_FALSE(rdna1::trainWithConvRegions(c10::Device(c10::kCPU)));
  ::setenv("RDNA1_TRAIN_REGIONS", "", 1); // empty: as unset
  EXPECT_FALSE(rdna1::trainWithConvRegions(c10::Device(c10::kCPU)));
  EXPECT_EQ(conv(), 2);
  EXPECT_EQ(autoRegions(), 2);
}

TEST_F(TrainingRegionsTest, BadEnvironmentValueIsAOneLineError) {
  ::setenv("RDNA1_TRAIN_REGIONS", "fast", 1);
  try {
    rdna1::trainWithConvRegions(c10::Device(c10::kCPU));
    FAIL() << "no error";
  } catch (const c10::Error &error) {
    const std::string message = error.what_without_backtrace();
    EXPECT_NE(message.find("rdna1: RDNA1_TRAIN_REGIONS='fast' is not one of auto, conv"),
              std::string::npos)
        << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  EXPECT_EQ(conv() + autoRegions(), 0);
}

} // namespace
