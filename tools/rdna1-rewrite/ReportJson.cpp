#include "ReportJson.h"

#include <cstdio>

namespace rdna1::tool {
namespace {

std::string quoted(const std::string &text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void writeCounts(std::ostream &out, const passes::RewriteCounts &counts) {
  out << "{";
  const char *separator = "";
  for (const auto &[kind, count] : counts) {
    out << separator << quoted(kind) << ": " << count;
    separator = ", ";
  }
  out << "}";
}

} // namespace

void writeReportJson(std::ostream &out, const passes::ModuleReport &report,
                     const std::string &input, const std::string &output) {
  out << "{\n  \"input\": " << quoted(input) << ",\n  \"output\": " << quoted(output)
      << ",\n  \"convolutions\": " << report.convolutions() << ",\n  \"norms\": " << report.norms()
      << ",\n  \"host_regions\": " << report.regions
      << ",\n  \"default_backend\": " << quoted(report.defaultBackend) << ",\n  \"methods\": [";
  const char *separator = "\n";
  for (const auto &method : report.methods) {
    out << separator << "    {\"class\": " << quoted(method.owner)
        << ", \"method\": " << quoted(method.method) << ", \"convolutions\": ";
    writeCounts(out, method.convolutions);
    out << ", \"norms\": ";
    writeCounts(out, method.norms);
    out << "}";
    separator = ",\n";
  }
  out << "\n  ]\n}\n";
}

} // namespace rdna1::tool
