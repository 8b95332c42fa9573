#include "libbpf_log.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>

namespace ebpf_otel {
namespace {

constexpr size_t kMaxLines = 256;       // lines kept
constexpr size_t kMaxLineBytes = 1024;  // longer lines are cut
constexpr size_t kMaxMessageBytes = 16 << 20;

struct LogBuffer {
  std::mutex mutex;
  std::deque<std::string> lines;  // lines[i] has sequence first_seq + i
  uint64_t first_seq = 0;
  bool echo = false;
};

LogBuffer& Buffer() {
  static LogBuffer* buffer = new LogBuffer();  // never destroyed: libbpf may log at exit
  return *buffer;
}

void AppendLines(LogBuffer& buffer, const char* text, size_t len) {
  const char* end = text + len;
  while (text < end) {
    const char* nl = static_cast<const char*>(memchr(text, '\n', end - text));
    const char* line_end = nl ? nl : end;
    size_t line_len = line_end - text;
    if (line_len > 0) {
      std::string line(text, line_len < kMaxLineBytes ? line_len : kMaxLineBytes);
      buffer.lines.push_back(std::move(line));
      if (buffer.lines.size() > kMaxLines) {
        buffer.lines.pop_front();
        buffer.first_seq++;
      }
    }
    text = nl ? nl + 1 : end;
  }
}

int PrintCallback(enum libbpf_print_level level, const char* format, va_list args) {
  LogBuffer& buffer = Buffer();
  if (level == LIBBPF_DEBUG && !buffer.echo) return 0;

  char small[2048];
  va_list copy;
  va_copy(copy, args);
  int needed = vsnprintf(small, sizeof(small), format, copy);
  va_end(copy);
  if (needed < 0) return 0;

  const char* text = small;
  char* large = nullptr;
  size_t len = static_cast<size_t>(needed);
  if (len >= sizeof(small)) {
    // The verifier log arrives as one message; keep all of it so its tail,
    // where the verdict is, survives.
    if (len >= kMaxMessageBytes) len = kMaxMessageBytes - 1;
    large = static_cast<char*>(malloc(len + 1));
    if (large) {
      vsnprintf(large, len + 1, format, args);
      text = large;
    } else {
      len = sizeof(small) - 1;
    }
  }

  {
    std::lock_guard<std::mutex> lock(buffer.mutex);
    if (buffer.echo) fwrite(text, 1, len, stderr);
    if (level != LIBBPF_DEBUG) AppendLines(buffer, text, len);
  }
  free(large);
  return 0;
}

}  // namespace

void InstallLibbpfLog() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* debug = getenv("EBPF_OTEL_LIBBPF_DEBUG");
    Buffer().echo = debug && strcmp(debug, "1") == 0;
    libbpf_set_print(PrintCallback);
  });
}

uint64_t LibbpfLogMark() {
  LogBuffer& buffer = Buffer();
  std::lock_guard<std::mutex> lock(buffer.mutex);
  return buffer.first_seq + buffer.lines.size();
}

std::vector<std::string> LibbpfLogSince(uint64_t mark, size_t max_lines) {
  LogBuffer& buffer = Buffer();
  std::lock_guard<std::mutex> lock(buffer.mutex);
  uint64_t end = buffer.first_seq + buffer.lines.size();
  uint64_t begin = mark < buffer.first_seq ? buffer.first_seq : mark;
  if (end - begin > max_lines) begin = end - max_lines;
  std::vector<std::string> out;
  for (uint64_t seq = begin; seq < end; seq++) out.push_back(buffer.lines[seq - buffer.first_seq]);
  return out;
}

}  // namespace ebpf_otel
