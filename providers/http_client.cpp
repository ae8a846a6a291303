#include "providers/http_client.hpp"

#include <pthread.h>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "messages/trim.hpp"

namespace bgagent {

namespace {

using clock_type = std::chrono::steady_clock;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// A thousand connections need more descriptors than the usual soft limit of
// 1,024: raise the soft limit to the hard one.
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

struct transfer {
  uint64_t id = 0;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  http_request req;
  http_client::callback cb;
  http_response resp;
  size_t max_bytes = 0;
  bool too_large = false;
  char errbuf[CURL_ERROR_SIZE] = {0};

  ~transfer() {
    if (headers)
      curl_slist_free_all(headers);
    if (easy)
      curl_easy_cleanup(easy);
  }
};

size_t on_header(char* buf, size_t size, size_t n, void* ud) {
  auto* t = static_cast<transfer*>(ud);
  size_t len = size * n;
  std::string line = trim(std::string(buf, len));
  if (line.rfind("HTTP/", 0) == 0) {
    t->resp.headers.clear(); // a new response (e.g. after 100 Continue)
    return len;
  }
  auto colon = line.find(':');
  if (colon != std::string::npos && colon > 0) {
    auto name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    t->resp.headers[name] = trim(line.substr(colon + 1));
  }
  return len;
}

size_t on_body(char* buf, size_t size, size_t n, void* ud) {
  auto* t = static_cast<transfer*>(ud);
  size_t len = size * n;
  if (t->resp.body.size() + len > t->max_bytes) {
    t->too_large = true;
    return 0; // aborts the transfer
  }
  t->resp.body.append(buf, len);
  return len;
}

// Called by libcurl once the request has a connection, right before it is
// sent. A second call for the same transfer is libcurl about to send the
// request again by itself: it does when a kept-alive connection it reused
// dies before any byte of the answer. That resend is refused, so the
// attempt fails where bgagent sees it (charged as a request the provider
// may have processed) and is retried by bgagent's own policy.
int on_prereq(void* ud, char*, char*, int, int) {
  auto& r = static_cast<transfer*>(ud)->resp;
  if (r.request_sent) {
    r.resend_refused = true;
    return CURL_PREREQFUNC_ABORT;
  }
  r.request_sent = true;
  return CURL_PREREQFUNC_OK;
}

} // namespace

// One libcurl multi handle with its epoll thread. libcurl looks for a
// reusable connection by walking every connection to the host, so one
// multi holding 10,000 connections spends its time in that walk: requests
// are spread over shards of at most ~1,024 connections each.
struct http_client::shard {
  http_client_settings settings;
  CURLM* multi = nullptr;
  int epfd = -1;
  int wakefd = -1;
  bool timer_set = false;
  clock_type::time_point deadline;
  std::thread thread;

  mutable std::mutex mtx; // guards the three fields below
  std::vector<std::unique_ptr<transfer>> incoming;
  std::vector<uint64_t> cancels;
  bool stopping = false;

  std::atomic<size_t> pending{0};
  // Owned by the shard's thread only.
  std::unordered_map<uint64_t, std::unique_ptr<transfer>> active;
  // Easy handles of finished transfers, reset, for the next ones: a fresh
  // handle allocates its buffers again, and at thousands of calls a second
  // that allocation was the shard thread's largest cost.
  std::vector<CURL*> spare;

  std::atomic<uint64_t> turns{0}; // loop turns, for tests

  static int on_socket(CURL*, curl_socket_t s, int what, void* userp,
                       void* socketp) {
    auto* self = static_cast<shard*>(userp);
    if (what == CURL_POLL_REMOVE) {
      epoll_ctl(self->epfd, EPOLL_CTL_DEL, s, nullptr);
      curl_multi_assign(self->multi, s, nullptr);
      return 0;
    }
    epoll_event ev{};
    ev.data.fd = s;
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) |
                ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    int op = socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(self->epfd, op, s, &ev) != 0) {
      // The descriptor was reused or dropped behind our back: try the other.
      op = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
      if (epoll_ctl(self->epfd, op, s, &ev) != 0)
        spdlog::warn("http client: epoll_ctl failed: {}", std::strerror(errno));
    }
    if (!socketp)
      curl_multi_assign(self->multi, s, self);
    return 0;
  }

  static int on_timer(CURLM*, long timeout_ms, void* userp) {
    auto* self = static_cast<shard*>(userp);
    if (timeout_ms < 0) {
      self->timer_set = false;
    } else {
      self->timer_set = true;
      self->deadline = clock_type::now() + std::chrono::milliseconds(timeout_ms);
    }
    return 0;
  }

  void wake() {
    uint64_t one = 1;
    ssize_t r = ::write(wakefd, &one, sizeof(one));
    (void)r;
  }

  void deliver(std::unique_ptr<transfer> t) {
    --pending;
    if (t->easy && spare.size() < static_cast<size_t>(settings.max_connections)) {
      curl_easy_reset(t->easy); // no option of this transfer outlives it
      // Reset turns signals back on: a spare's cleanup at exit would then
      // save and restore SIGPIPE's handler, three system calls a handle.
      curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
      spare.push_back(t->easy);
      t->easy = nullptr;
    }
    try {
      if (t->cb)
        t->cb(std::move(t->resp));
    } catch (const std::exception& e) {
      spdlog::error("http client: a completion callback threw: {}", e.what());
    } catch (...) {
      spdlog::error("http client: a completion callback threw");
    }
  }

  void start(std::unique_ptr<transfer> t) {
    CURL* e = nullptr;
    if (!spare.empty()) {
      e = spare.back();
      spare.pop_back();
    } else {
      e = curl_easy_init();
    }
    if (!e) {
      t->resp.error = "could not create a libcurl handle";
      deliver(std::move(t));
      return;
    }
    t->easy = e;
    for (auto& h : t->req.headers)
      t->headers = curl_slist_append(t->headers, h.c_str());
    // No "Expect: 100-continue" round trip before a POST body.
    t->headers = curl_slist_append(t->headers, "Expect:");
    bool https = t->req.url.rfind("https://", 0) == 0;
    curl_easy_setopt(e, CURLOPT_URL, t->req.url.c_str());
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->req.body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(t->req.body.size()));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(t->req.timeout_seconds * 1000));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(t->req.connect_timeout_seconds * 1000));
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
    if (https)
      curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L); // prefer multiplexing
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!settings.ca_file.empty())
      curl_easy_setopt(e, CURLOPT_CAINFO, settings.ca_file.c_str());
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, settings.user_agent.c_str());
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, t.get());
    t->max_bytes = settings.max_response_bytes;
    if (curl_multi_add_handle(multi, e) != CURLM_OK) {
      t->resp.error = "could not start the request";
      deliver(std::move(t));
      return;
    }
    auto id = t->id;
    active.emplace(id, std::move(t));
  }

  void cancel_now(uint64_t id) {
    auto i = active.find(id);
    if (i == active.end())
      return; // already delivered
    auto t = std::move(i->second);
    active.erase(i);
    curl_multi_remove_handle(multi, t->easy);
    t->resp = http_response{};
    t->resp.cancelled = true;
    t->resp.error = "cancelled";
    deliver(std::move(t));
  }

  void collect_done() {
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
      if (m->msg != CURLMSG_DONE)
        continue;
      transfer* raw = nullptr;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &raw);
      CURLcode rc = m->data.result;
      auto i = raw ? active.find(raw->id) : active.end();
      if (i == active.end()) {
        curl_multi_remove_handle(multi, m->easy_handle);
        continue;
      }
      auto t = std::move(i->second);
      active.erase(i);
      long status = 0;
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
      long version = 0;
      curl_easy_getinfo(t->easy, CURLINFO_HTTP_VERSION, &version);
      curl_multi_remove_handle(multi, t->easy);
      auto& r = t->resp;
      r.status = static_cast<int>(status);
      r.http_version = version == CURL_HTTP_VERSION_2_0   ? "2"
                       : version == CURL_HTTP_VERSION_1_1 ? "1.1"
                       : version == CURL_HTTP_VERSION_1_0 ? "1.0"
                                                          : "";
      if (rc == CURLE_OK) {
        r.complete = true;
      } else {
        r.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
        if (t->too_large)
          r.error = "response larger than " +
                    std::to_string(t->max_bytes) + " bytes";
        else if (r.resend_refused)
          r.error = "the connection closed after the request was sent, "
                    "before any answer";
        else
          r.error = t->errbuf[0] ? std::string(t->errbuf)
                                 : std::string(curl_easy_strerror(rc));
        while (!r.error.empty() &&
               (r.error.back() == '\n' || r.error.back() == '\r'))
          r.error.pop_back();
      }
      deliver(std::move(t));
    }
  }

  void loop() {
    std::vector<epoll_event> events(512);
    int running = 0;
    for (;;) {
      ++turns;
      std::vector<std::unique_ptr<transfer>> fresh;
      std::vector<uint64_t> gone;
      {
        // After the eventfd was read (below, or at the start): submit()
        // wakes only for the first request of a batch, so this order
        // must stay.
        std::lock_guard<std::mutex> lock(mtx);
        if (stopping)
          break;
        fresh.swap(incoming);
        gone.swap(cancels);
      }
      for (auto& t : fresh)
        start(std::move(t));
      for (auto id : gone)
        cancel_now(id);
      int wait_ms = 1000;
      if (timer_set) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - clock_type::now())
                      .count();
        wait_ms = static_cast<int>(std::max<int64_t>(
          0, std::min<int64_t>(left, wait_ms)));
      }
      int n = epoll_wait(epfd, events.data(), static_cast<int>(events.size()),
                         wait_ms);
      if (n < 0 && errno != EINTR)
        spdlog::warn("http client: epoll_wait failed: {}", std::strerror(errno));
      for (int k = 0; k < n; ++k) {
        int fd = events[k].data.fd;
        if (fd == wakefd) {
          uint64_t v;
          ssize_t r = ::read(wakefd, &v, sizeof(v));
          (void)r;
          continue;
        }
        int flags = 0;
        if (events[k].events & EPOLLIN)
          flags |= CURL_CSELECT_IN;
        if (events[k].events & EPOLLOUT)
          flags |= CURL_CSELECT_OUT;
        if (events[k].events & (EPOLLERR | EPOLLHUP))
          flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(multi, fd, flags, &running);
      }
      if (timer_set && clock_type::now() >= deadline) {
        timer_set = false;
        curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
      } else if (n == 0 && !timer_set) {
        curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
      }
      collect_done();
    }
  }

  explicit shard(http_client_settings s) : settings(std::move(s)) {
    multi = curl_multi_init();
    epfd = epoll_create1(EPOLL_CLOEXEC);
    wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!multi || epfd < 0 || wakefd < 0)
      throw std::runtime_error("http client: could not set up libcurl/epoll");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wakefd;
    epoll_ctl(epfd, EPOLL_CTL_ADD, wakefd, &ev);
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &shard::on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &shard::on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
    curl_multi_setopt(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      settings.max_connections);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, settings.max_connections);
    curl_multi_setopt(multi, CURLMOPT_MAX_CONCURRENT_STREAMS,
                      settings.max_streams_per_connection);
    thread = std::thread([this] {
      pthread_setname_np(pthread_self(), "bg.http");
      loop();
    });
  }

  ~shard() {
    {
      std::lock_guard<std::mutex> lock(mtx);
      stopping = true;
    }
    wake();
    if (thread.joinable())
      thread.join();
    for (auto& kv : active)
      curl_multi_remove_handle(multi, kv.second->easy);
    active.clear();
    incoming.clear();
    for (auto* e : spare)
      curl_easy_cleanup(e);
    curl_multi_cleanup(multi);
    close(epfd);
    close(wakefd);
  }

  void submit(std::unique_ptr<transfer> t) {
    ++pending;
    bool first;
    {
      std::lock_guard<std::mutex> lock(mtx);
      first = incoming.empty();
      incoming.push_back(std::move(t));
    }
    // Only the first request of a batch wakes the thread (at thousands of
    // calls a second, thousands of eventfd writes and loop turns fewer).
    // None waits unwoken: the loop reads the eventfd before its next swap
    // of the queue, so a request pushed onto a non-empty queue is taken by
    // the swap that the first one's wake leads to.
    if (first)
      wake();
  }

  void cancel(uint64_t id) {
    {
      std::lock_guard<std::mutex> lock(mtx);
      cancels.push_back(id);
    }
    wake();
  }
};

namespace {

constexpr long connections_per_shard = 1024;

} // namespace

http_client::http_client(http_client_settings s) {
  global_init();
  // A peer closing a connection must be an error on that transfer, never a
  // signal that ends the process.
  std::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  long total = std::max<long>(1, s.max_connections);
  long n = std::max<long>(1, (total + connections_per_shard - 1) /
                               connections_per_shard);
  for (long k = 0; k < n; ++k) {
    auto each = s;
    each.max_connections = (total + n - 1) / n;
    shards_.push_back(std::make_unique<shard>(std::move(each)));
  }
}

http_client::~http_client() = default;

uint64_t http_client::submit(http_request req, callback cb) {
  // The first shard with room: a few calls at a time all share the first
  // shard's connections (kept alive, multiplexed); more spill over.
  size_t n = shards_.size(), k = 0;
  auto full = [](const shard& s) {
    return s.pending.load() >= static_cast<size_t>(s.settings.max_connections);
  };
  for (size_t i = 1; i < n && full(*shards_[k]); ++i)
    if (shards_[i]->pending.load() < shards_[k]->pending.load())
      k = i;
  auto t = std::make_unique<transfer>();
  t->id = next_id_++ * n + k; // the shard is in the id, for cancel()
  t->req = std::move(req);
  t->cb = std::move(cb);
  auto id = t->id;
  shards_[k]->submit(std::move(t));
  return id;
}

void http_client::cancel(uint64_t id) {
  shards_[id % shards_.size()]->cancel(id);
}

size_t http_client::in_flight() const {
  size_t n = 0;
  for (auto& s : shards_)
    n += s->pending.load();
  return n;
}

uint64_t http_client::loop_turns() const {
  uint64_t n = 0;
  for (auto& s : shards_)
    n += s->turns.load();
  return n;
}

} // namespace bgagent
