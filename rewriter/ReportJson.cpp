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

std::string counts(const passes::RewriteCounts &counts) {
  std::string out = "{";
  const char *separator = "";
  for (const auto &[kind, count] : counts) {
    out += separator + quoted(kind) + ": " + std::to_string(count);
    separator = ", ";
  }
  return out + "}";
}

std::string strings(const std::vector<std::string> &values) {
  std::string out = "[";
  const char *separator = "";
  for (const std::string &value : values) {
    out += separator + quoted(value);
    separator = ", ";
  }
  return out + "]";
}

std::string field(const char *name, const std::string &value) {
  return std::string(",\n  \"") + name + "\": " + value;
}

} // namespace

std::string reportJson(const passes::ModuleReport &report, const std::string &input,
                       const std::string &output) {
  std::string out = "{\n  \"version\": " + std::to_string(kReportVersion);
  out += field("input", quoted(input));
  out += field("output", quoted(output));
  out += field("convolution_layers", std::to_string(report.convolutionLayers));
  out += field("norm_layers", std::to_string(report.normLayers));
  out += field("recurrent_layers", std::to_string(report.recurrentLayers));
  out += field("convolutions", std::to_string(report.convolutions()));
  out += field("norms", std::to_string(report.norms()));
  out += field("recurrent", std::to_string(report.recurrent()));
  out += field("host_regions", std::to_string(report.regions));
  out += field("default_backend", quoted(report.defaultBackend));
  out += field("region_decisions", strings(report.regionDecisions));
  out += ",\n  \"methods\": [";
  const char *separator = "\n";
  for (const auto &method : report.methods) {
    out += separator;
    out += "    {\"class\": " + quoted(method.owner) + ", \"method\": " + quoted(method.method) +
           ", \"convolutions\": " + counts(method.convolutions) +
           ", \"norms\": " + counts(method.norms) + ", \"recurrent\": " + counts(method.recurrent) +
           ", \"remaining_dnn_users\": " + strings(method.remainingDnnUsers) + "}";
    separator = ",\n";
  }
  return out + "\n  ]\n}\n";
}

} // namespace rdna1::tool
