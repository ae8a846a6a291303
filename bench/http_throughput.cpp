// bgagent-bench-http (http_throughput.cpp): how close bgagent gets to W/L
// calls per second with W workers against an OpenAI-compatible server of
// fixed latency L.
//
// For each W (default 16, 256, 1000) it writes W * ROUNDS summarize tasks
// into a fresh directory, runs the real `bgagent run --workers W` against
// the server (provider openai, LLM_BASE_URL), and prints the achieved
// throughput of the run phase against the ideal W/L, the steady rate (the
// requests the server received per second between the first W and the
// last W: without the first round, which opens W connections, and the
// last; 3 rounds at least), the peak number of requests the server
// held at once, bgagent's peak RSS and its CPU time per task (submit
// included). The steady rate is measured by the built-in server only.
//
// The server is, by default, a minimal fixed-latency HTTP/1.1 server in
// this program (one epoll thread, keep-alive, every answer exactly L after
// its request): aimock (node) reaches only 80-90 % of 1,000 requests/s on
// this 2-core machine while sharing the cores with bgagent, so at W=1000 it
// would measure aimock. `--aimock` uses aimock instead (needs
// scripts/install-aimock.sh) for comparison.
//
// The run is given BG_AGENT_RPM far above the server's capacity, so it
// measures the engine at speed, not the slow start of a provider whose
// limits are unknown (the first call alone, then everything).
//
// Every task's request is different, so the response cache (on, as for
// users) only costs here: a lookup and a put per task. `--no-cache` runs
// without it, to see that cost.
//
// `--baseline PATH` runs another bgagent binary (the previous release) on
// the same tasks right after this one, for a side-by-side figure. Each row
// also prints the CPU time of the run's busiest thread per task.
//
// Usage: bgagent-bench-http [--workers 16,256,1000] [--latency-ms 1000]
//                           [--rounds 10] [--aimock] [--no-cache]
//                           [--baseline PATH]
// Prints figures; never passes or fails on time.
#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sstream>
#include <string>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <vector>

#include "bench/child_process.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

// ---- a fixed-latency OpenAI-compatible server -------------------------

class fixed_latency_server {
public:
  explicit fixed_latency_server(int latency_ms) : latency_(latency_ms) {
    body_ = R"({"id":"chatcmpl-bench","object":"chat.completion",)"
            R"("model":"bench","choices":[{"index":0,"message":{"role":)"
            R"("assistant","content":"{\"summary\": \"A fixed answer.\"}"},)"
            R"("finish_reason":"stop"}],"usage":{"prompt_tokens":50,)"
            R"("completion_tokens":10,"total_tokens":60}})";
    response_ = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                "Content-Length: " +
                std::to_string(body_.size()) + "\r\n\r\n" + body_;
    lfd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        listen(lfd_, 4096) != 0) {
      std::perror("bind/listen");
      std::exit(1);
    }
    socklen_t len = sizeof(a);
    getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    add(lfd_);
    thread_ = std::thread([this] { loop(); });
  }
  ~fixed_latency_server() {
    stop_ = true;
    thread_.join();
    for (auto& kv : conns_)
      close(kv.first);
    close(lfd_);
    close(ep_);
  }
  int port() const { return port_; }
  uint64_t served() const { return served_.load(); }
  int peak_held() const { return peak_.load(); }
  void reset_peak() {
    peak_ = 0;
    std::lock_guard<std::mutex> guard(arrivals_mutex_);
    arrivals_.clear();
  }
  // Requests per second after the first `skip` and before the last `skip`
  // (with skip = W: the rounds between the first, which opens W
  // connections, and the last), from the arrival of request skip to that
  // of request n - skip. 0 when there are fewer than 3 rounds.
  double steady_rate(size_t skip) {
    std::lock_guard<std::mutex> guard(arrivals_mutex_);
    size_t n = arrivals_.size();
    if (skip == 0 || n < 3 * skip)
      return 0;
    double span = std::chrono::duration<double>(arrivals_[n - skip] -
                                                arrivals_[skip])
                    .count();
    return span > 0 ? (n - 2 * skip) / span : 0;
  }

private:
  struct conn {
    std::string in;
    std::string out;
  };
  struct due {
    clock_type::time_point at;
    int fd;
  };

  void add(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  }

  void drop(int fd) {
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    conns_.erase(fd);
  }

  void flush(int fd, conn& c) {
    while (!c.out.empty()) {
      ssize_t n = send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n <= 0)
        break;
      c.out.erase(0, static_cast<size_t>(n));
    }
    epoll_event ev{};
    ev.events = EPOLLIN | (c.out.empty() ? 0u : static_cast<unsigned>(EPOLLOUT));
    ev.data.fd = fd;
    epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
  }

  // Complete requests in the buffer are scheduled for an answer at now+L.
  void parse(int fd, conn& c) {
    for (;;) {
      auto head = c.in.find("\r\n\r\n");
      if (head == std::string::npos)
        return;
      size_t length = 0;
      auto h = c.in.substr(0, head);
      for (auto& ch : h)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (auto at = h.find("content-length:"); at != std::string::npos)
        length = std::strtoul(h.c_str() + at + 15, nullptr, 10);
      if (c.in.size() < head + 4 + length)
        return;
      c.in.erase(0, head + 4 + length);
      auto now = clock_type::now();
      {
        std::lock_guard<std::mutex> guard(arrivals_mutex_);
        arrivals_.push_back(now);
      }
      queue_.push_back({now + std::chrono::milliseconds(latency_), fd});
      int held = static_cast<int>(queue_.size());
      if (held > peak_)
        peak_ = held;
    }
  }

  void loop() {
    std::vector<epoll_event> evs(1024);
    char buf[16384];
    while (!stop_) {
      int wait = 50;
      if (!queue_.empty()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      queue_.front().at - clock_type::now())
                      .count();
        wait = static_cast<int>(std::max<long>(0, std::min<long>(left, 50)));
      }
      int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), wait);
      for (int k = 0; k < n; ++k) {
        int fd = evs[k].data.fd;
        if (fd == lfd_) {
          for (;;) {
            int c = accept4(lfd_, nullptr, nullptr,
                            SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c < 0)
              break;
            int one = 1;
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            conns_[c];
            add(c);
          }
          continue;
        }
        auto i = conns_.find(fd);
        if (i == conns_.end())
          continue;
        if (evs[k].events & EPOLLOUT)
          flush(fd, i->second);
        if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
          bool closed = false;
          for (;;) {
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r > 0) {
              i->second.in.append(buf, static_cast<size_t>(r));
              continue;
            }
            if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
              closed = true;
            break;
          }
          if (closed)
            drop(fd);
          else
            parse(fd, i->second);
        }
      }
      auto now = clock_type::now();
      while (!queue_.empty() && queue_.front().at <= now) {
        auto d = queue_.front();
        queue_.pop_front();
        auto i = conns_.find(d.fd);
        if (i == conns_.end())
          continue; // the client went away
        i->second.out += response_;
        flush(d.fd, i->second);
        ++served_;
      }
    }
  }

  int latency_;
  std::string body_, response_;
  int lfd_ = -1, ep_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> served_{0};
  std::atomic<int> peak_{0};
  std::mutex arrivals_mutex_;
  std::vector<clock_type::time_point> arrivals_; // each request's arrival
  std::deque<due> queue_; // answers in order: the latency is fixed
  std::unordered_map<int, conn> conns_;
  std::thread thread_;
};

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');)
    out.push_back(std::atoi(x.c_str()));
  return out;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<int> workers{16, 256, 1000};
  int latency_ms = 1000;
  int rounds = 10;
  bool use_aimock = false;
  bool no_cache = false;
  std::string baseline;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      return i + 1 < argc ? argv[++i] : "";
    };
    if (a == "--workers")
      workers = parse_list(next());
    else if (a == "--latency-ms")
      latency_ms = std::atoi(next().c_str());
    else if (a == "--rounds")
      rounds = std::atoi(next().c_str());
    else if (a == "--aimock")
      use_aimock = true;
    else if (a == "--no-cache")
      no_cache = true;
    else if (a == "--baseline")
      baseline = next();
    else {
      std::fprintf(stderr,
                   "usage: bgagent-bench-http [--workers 16,256,1000] "
                   "[--latency-ms 1000] [--rounds 10] [--aimock] "
                   "[--no-cache] [--baseline PATH]\n");
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  std::string base_url;
  std::unique_ptr<fixed_latency_server> server;
  pid_t aimock_pid = -1;
  std::string tmp_root =
    (std::filesystem::temp_directory_path() /
     ("bgagent-bench-http-" + std::to_string(getpid())))
      .string();
  std::filesystem::create_directories(tmp_root);
  if (use_aimock) {
    std::string cli = std::string(BGAGENT_SOURCE_DIR) + "/.deps/bin/aimock";
    if (const char* a = std::getenv("BGAGENT_AIMOCK"); a && *a)
      cli = a;
    if (access(cli.c_str(), X_OK) != 0) {
      std::fprintf(stderr, "%s: not installed (scripts/install-aimock.sh)\n",
                   cli.c_str());
      return 2;
    }
    std::filesystem::create_directories(tmp_root + "/fixtures");
    std::ofstream(tmp_root + "/fixtures/bench.json")
      << R"({"fixtures":[{"match":{"userMessage":"bench"},"response":{)"
         R"("content":"{\"summary\": \"A fixed answer.\"}","usage":{)"
         R"("prompt_tokens":50,"completion_tokens":10,"total_tokens":60}},)"
         R"("chaos":{"latencyMs":)"
      << latency_ms << "}}]}";
    std::ofstream(tmp_root + "/aimock.json")
      << R"({"llm":{"fixtures":")" << tmp_root
      << R"(/fixtures","logLevel":"silent"}})";
    int port = bgagent::free_port();
    aimock_pid = fork();
    if (aimock_pid == 0) {
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      std::string config = tmp_root + "/aimock.json";
      execl(cli.c_str(), cli.c_str(), "--config", config.c_str(), "-p",
            std::to_string(port).c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
    std::printf("server: aimock (node) at %s, latency %d ms\n",
                base_url.c_str(), latency_ms);
  } else {
    server = std::make_unique<fixed_latency_server>(latency_ms);
    base_url = "http://127.0.0.1:" + std::to_string(server->port()) + "/v1";
    std::printf("server: built-in fixed-latency HTTP/1.1 server at %s, "
                "latency %d ms\n",
                base_url.c_str(), latency_ms);
  }
  std::printf("%-8s %6s %7s %9s %10s %10s %7s %8s %9s %9s %8s %9s %-14s "
              "%5s\n",
              "variant", "W", "tasks", "run s", "tasks/s", "ideal W/L",
              "% ideal", "steady %", "peak held", "peak RSS", "CPU us/t",
              "busy us/t", "busiest", "exit");
  std::fflush(stdout);
  bgagent::bench::env_list env{
    {"LLM_PROVIDER", "openai"}, {"LLM_BASE_URL", base_url},
    {"OPENAI_API_KEY", ""}, {"OPENROUTER_API_KEY", ""}, {"MODEL", "bench"},
    {"BG_AGENT_TOKEN_BUDGET", "1000000000000"},
    {"BG_AGENT_COST_BUDGET", "1000000"}, {"BG_AGENT_PRICE_PROMPT", "0"},
    {"BG_AGENT_PRICE_COMPLETION", "0"}, {"BG_AGENT_LOG_LEVEL", "warn"},
    {"BG_AGENT_TIMEOUT", "60"},
    // A limit far above the server's capacity: without one, a run's first
    // call goes alone until it is answered (slow start on an unknown
    // provider), which costs one latency per run (1 s of a 5 s run), not
    // a share of each call.
    {"BG_AGENT_RPM", "10000000"}};
  bool failed = false;
  for (int w : workers) {
    auto dir = tmp_root + "/w" + std::to_string(w);
    std::filesystem::create_directories(dir);
    int n = w * rounds;
    {
      std::ofstream tasks(dir + "/tasks.jsonl");
      for (int i = 0; i < n; ++i)
        tasks << R"({"type":"summarize","input":"bench text number )" << i
              << R"(. It is short."})" << "\n";
    }
    // The baseline (e.g. the previous release) right after this build, on
    // the same tasks: the machine's noise hits both alike.
    std::vector<std::pair<std::string, std::string>> variants{
      {"this", BGAGENT_BINARY_PATH}};
    if (!baseline.empty())
      variants.push_back({"baseline", baseline});
    for (auto& [label, binary] : variants) {
      std::filesystem::remove(dir + "/bgagent.db");
      std::filesystem::remove(dir + "/bgagent.db-wal");
      std::filesystem::remove(dir + "/bgagent.db-shm");
      std::filesystem::remove(dir + "/audit.jsonl");
      if (server)
        server->reset_peak();
      auto run_env = env;
      run_env.push_back({"BG_AGENT_DB", dir + "/bgagent.db"});
      run_env.push_back({"BG_AGENT_AUDIT_LOG", dir + "/audit.jsonl"});
      run_env.push_back({"BG_AGENT_ALERTS_LOG", dir + "/alerts.jsonl"});
      auto log = dir + "/output.txt";
      std::vector<std::string> argv = {binary, "run", "--tasks",
                                       dir + "/tasks.jsonl", "--workers",
                                       std::to_string(w)};
      if (no_cache)
        argv.push_back("--no-cache");
      auto r = bgagent::bench::run_measured(argv, run_env, log);
      std::string out;
      {
        std::ifstream in(log);
        std::stringstream ss;
        ss << in.rdbuf();
        out = ss.str();
      }
      double secs = 0;
      if (auto at = out.find(") in "); at != std::string::npos)
        secs = std::atof(out.c_str() + at + 5);
      double rate = secs > 0 ? n / secs : 0;
      double ideal = w * 1000.0 / latency_ms;
      double steady = server ? server->steady_rate(static_cast<size_t>(w)) : 0;
      std::printf("%-8s %6d %7d %9.2f %10.1f %10.1f %6.1f%% %7.1f%% %9d "
                  "%6.1f MB %8.1f %9.1f %-14s %5d\n",
                  label.c_str(), w, n, secs, rate, ideal, 100.0 * rate / ideal,
                  100.0 * steady / ideal,
                  server ? server->peak_held() : -1, r.peak_rss_mb,
                  r.cpu_seconds * 1e6 / n,
                  r.busiest_thread_cpu_seconds * 1e6 / n,
                  r.busiest_thread.c_str(), r.exit_code);
      std::fflush(stdout);
      if (r.exit_code != 0) {
        std::fprintf(stderr, "%s exited %d; output kept in %s\n",
                     binary.c_str(), r.exit_code, dir.c_str());
        failed = true;
      }
    }
    if (!failed)
      std::filesystem::remove_all(dir);
  }
  if (aimock_pid > 0) {
    kill(aimock_pid, SIGKILL);
    waitpid(aimock_pid, nullptr, 0);
  }
  std::error_code ec;
  std::filesystem::remove_all(tmp_root + "/fixtures", ec);
  std::filesystem::remove(tmp_root + "/aimock.json", ec);
  std::filesystem::remove(tmp_root, ec); // kept when a run failed
  return 0;
}
