// The libcurl transport (transport/curl.hpp) and the HTTP credential sources
// (credentials_http.hpp), against real servers the tests start on 127.0.0.1: in-process HTTP
// servers on POSIX sockets (counting connections, verifying SigV4 with ddb2os's signer over the
// bytes that arrived), a forward/CONNECT proxy, `openssl s_server` with a CA made at test time,
// and fakes of the container and EC2 metadata endpoints. Nothing leaves the loopback interface.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <zlib.h>

#include <ddb2os/credentials_http.hpp>
#include <ddb2os/transport/curl.hpp>

#include "test_support.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
namespace http = ddb2os::http;
namespace sigv4 = ddb2os::sigv4;
namespace fs = std::filesystem;
using ddb2os::credentials;
using steady = std::chrono::steady_clock;

constexpr const char* key_id = "AKIDEXAMPLE";
constexpr const char* secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr const char* token = "FwoGZXIvYXdzEXAMPLETOKEN//+=";
// libcurl's own words for a refused connection, which 8.x changed ("Couldn't connect to server",
// "Could not connect to server"): a message carries them as the libcurl it runs on says them.
const std::string refused = curl_easy_strerror(CURLE_COULDNT_CONNECT);

http::clock::time_point in(std::chrono::milliseconds ms) { return http::clock::now() + ms; }

bool iequals(std::string_view a, std::string_view b) { return ddb2os::detail::iequals(a, b); }

// ---- A request as a server received it ----

struct received_request {
    std::string method, target;
    std::vector<http::header> headers;
    std::string body;

    std::string header(std::string_view name) const {
        for (const auto& h : headers)
            if (iequals(h.name, name)) return h.value;
        return {};
    }
    int count(std::string_view name) const {
        int n = 0;
        for (const auto& h : headers) n += iequals(h.name, name) ? 1 : 0;
        return n;
    }
};

// One accepted socket: reads HTTP/1.1 requests (Content-Length bodies), writes bytes.
class connection {
public:
    connection(int fd, const std::atomic<bool>& stop) : fd_(fd), stop_(stop) {}

    std::optional<received_request> read_request() {
        std::size_t end;
        while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
            if (!fill()) return std::nullopt;
        const std::string head = buf_.substr(0, end);
        buf_.erase(0, end + 4);
        received_request r;
        std::istringstream lines(head);
        std::string line;
        std::getline(lines, line);
        std::istringstream first(line);
        first >> r.method >> r.target;
        while (std::getline(lines, line)) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            const std::size_t colon = line.find(':');
            if (colon == std::string::npos) continue;
            r.headers.push_back({line.substr(0, colon), std::string(ddb2os::detail::trim(line.substr(colon + 1)))});
        }
        const std::string length = r.header("content-length");
        const std::size_t n = length.empty() ? 0 : std::stoul(length);
        while (buf_.size() < n)
            if (!fill()) return std::nullopt;
        r.body = buf_.substr(0, n);
        buf_.erase(0, n);
        return r;
    }

    bool write(std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    bool stopping() const { return stop_.load(); }
    int fd() const { return fd_; }

private:
    bool fill() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            const int r = ::poll(&p, 1, 50);
            if (r == 0) continue;
            if (r < 0) return false;
            char tmp[16384];
            const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
            if (n <= 0) return false;
            buf_.append(tmp, static_cast<std::size_t>(n));
            return true;
        }
        return false;
    }

    int fd_;
    const std::atomic<bool>& stop_;
    std::string buf_;
};

// Listens on 127.0.0.1 (a free port), runs `on_connection` on a thread per accepted socket and
// counts them. Stopping joins every thread.
class server {
public:
    explicit server(std::function<void(connection&)> on_connection) : on_connection_(std::move(on_connection)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd_, 64) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
        accept_thread_ = std::thread([this] { run(); });
    }
    ~server() { stop(); }
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    void stop() {
        if (stop_.exchange(true)) return;
        accept_thread_.join();
        ::close(fd_);
        std::vector<std::thread> threads;
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            threads.swap(threads_);
        }
        for (auto& t : threads) t.join();
    }

    int port() const { return port_; }
    int connections() const { return accepted_.load(); }

private:
    void run() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            const int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) continue;
            ++accepted_;
            const std::lock_guard<std::mutex> lock(mutex_);
            threads_.emplace_back([this, c] {
                connection conn(c, stop_);
                on_connection_(conn);
                ::close(c);
            });
        }
    }

    std::function<void(connection&)> on_connection_;
    int fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> accepted_{0};
    std::thread accept_thread_;
    std::mutex mutex_;
    std::vector<std::thread> threads_;
};

// What an http_server does with one request.
struct answer {
    std::string raw;     // bytes to write
    bool close = false;  // then close the connection
    bool hang = false;   // never answer (until the server stops)
};

answer respond(int status, const std::string& body, const std::vector<http::header>& headers = {}) {
    std::string raw = "HTTP/1.1 " + std::to_string(status) + " Status\r\n";
    for (const auto& h : headers) raw += h.name + ": " + h.value + "\r\n";
    raw += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return {raw};
}

// HTTP/1.1 with keep-alive: each request is recorded, then answered by `handler`.
class http_server {
public:
    using handler = std::function<answer(const received_request&)>;

    explicit http_server(handler h)
        : handler_(std::move(h)), server_([this](connection& c) {
              while (std::optional<received_request> r = c.read_request()) {
                  {
                      const std::lock_guard<std::mutex> lock(mutex_);
                      requests_.push_back(*r);
                  }
                  const answer a = handler_(*r);
                  if (a.hang) {
                      while (!c.stopping()) std::this_thread::sleep_for(10ms);
                      return;
                  }
                  if (!a.raw.empty() && !c.write(a.raw)) return;
                  if (a.close) return;
              }
          }) {}

    std::vector<received_request> requests() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return requests_;
    }
    int connections() const { return server_.connections(); }
    int port() const { return server_.port(); }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

private:
    handler handler_;
    mutable std::mutex mutex_;
    std::vector<received_request> requests_;
    server server_;  // last: stopped (threads joined) before the members above go
};

// A port where nothing listens: bound and never listening, so connecting is refused.
struct refusing_port {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int port = 0;
    refusing_port() {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
    ~refusing_port() { ::close(fd); }
    refusing_port(const refusing_port&) = delete;
    refusing_port& operator=(const refusing_port&) = delete;
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
};

// Clears the proxy variables (and REQUEST_METHOD) for a test, so a machine's settings never
// route loopback traffic elsewhere, then sets the given ones; restores everything after.
class scoped_env {
public:
    explicit scoped_env(const std::map<std::string, std::string>& set = {}) {
        for (const char* n : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                              "no_proxy", "NO_PROXY", "REQUEST_METHOD"}) {
            const char* v = std::getenv(n);
            saved_.emplace_back(n, v ? std::optional<std::string>(v) : std::nullopt);
            ::unsetenv(n);
        }
        for (const auto& [k, v] : set) ::setenv(k.c_str(), v.c_str(), 1);
    }
    ~scoped_env() {
        for (const auto& [n, v] : saved_) {
            if (v)
                ::setenv(n.c_str(), v->c_str(), 1);
            else
                ::unsetenv(n.c_str());
        }
    }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;

private:
    std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

struct temp_dir {
    fs::path dir;
    temp_dir() {
        static std::atomic<int> n{0};
        dir = fs::temp_directory_path() /
              ("ddb2os-transport-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + "-" +
               std::to_string(steady::now().time_since_epoch().count()));
        fs::create_directories(dir);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    std::string write(const std::string& name, const std::string& text) const {
        std::ofstream(dir / name, std::ios::binary) << text;
        return (dir / name).string();
    }
};

// ---- SigV4 checked on the server side ----

// Runs on server threads: no doctest assertions here (they must stay on the test's thread).
std::chrono::system_clock::time_point parse_amz_date(const std::string& s) {
    if (s.size() != 16) return {};
    const auto num = [&](std::size_t at, std::size_t n) { return std::stoi(s.substr(at, n)); };
    const auto days = sigv4::detail::days_from_civil(num(0, 4), static_cast<unsigned>(num(4, 2)),
                                                     static_cast<unsigned>(num(6, 2)));
    return std::chrono::system_clock::time_point(
        std::chrono::seconds(days * 86400 + num(9, 2) * 3600 + num(11, 2) * 60 + num(13, 2)));
}

// The Authorization header (or "unsigned") ddb2os's signer computes from what arrived: the signed headers (as
// named in the received Authorization), the received body bytes, the received X-Amz-Date.
std::string expected_authorization(const received_request& r, const credentials& creds, std::string_view region,
                                   std::string_view service) {
    const std::string auth = r.header("authorization");
    const std::size_t at = auth.find("SignedHeaders=");
    if (at == std::string::npos) return "unsigned";
    const std::string names = auth.substr(at + 14, auth.find(',', at) - at - 14);
    std::vector<sigv4::header> hs;
    std::size_t start = 0;
    while (start <= names.size()) {
        const std::size_t end = std::min(names.find(';', start), names.size());
        const std::string name = names.substr(start, end - start);
        for (const auto& h : r.headers)
            if (iequals(h.name, name)) hs.push_back({h.name, h.value});
        start = end + 1;
    }
    const sigv4::request sr{r.method, r.target, hs, sigv4::payload::bytes(r.body)};
    const sigv4::signing_params p{region, service, parse_amz_date(r.header("x-amz-date")),
                                  sigv4::options::for_service(service)};
    for (const auto& f : sigv4::sign(sr, creds, p).headers)
        if (f.name == "Authorization") return f.value;
    return "none";
}

std::string gunzip(const std::string& in) {
    z_stream zs{};
    REQUIRE(inflateInit2(&zs, 15 + 16) == Z_OK);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    std::string out;
    int rc = Z_OK;
    while (rc == Z_OK) {
        char buf[4096];
        zs.next_out = reinterpret_cast<Bytef*>(buf);
        zs.avail_out = sizeof buf;
        rc = inflate(&zs, Z_NO_FLUSH);
        out.append(buf, sizeof buf - zs.avail_out);
    }
    inflateEnd(&zs);
    CHECK(rc == Z_STREAM_END);
    return out;
}

class fixed_credentials final : public ddb2os::credentials_provider {
public:
    fixed_credentials() = default;  // finds nothing
    explicit fixed_credentials(const credentials& c) : c_(c) {}
    ddb2os::credentials_lookup lookup() override {
        ++calls;
        return {c_, c_ ? "" : "a test source (empty)"};
    }
    std::atomic<int> calls{0};

private:
    std::optional<credentials> c_;
};

ddb2os::curl_options sigv4_options(std::shared_ptr<ddb2os::credentials_provider> p, const char* service = "es") {
    ddb2os::curl_options o;
    o.auth = ddb2os::authentication::sigv4(service, "eu-west-1", std::move(p));
    return o;
}

// ---- TLS: a CA and a server certificate for 127.0.0.1, made by the openssl command ----

struct tls_files {
    temp_dir tmp;
    std::string ca, cert, key;
    tls_files() {
        const std::string d = tmp.dir.string();
        const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
        tmp.write("ext.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n");
        const std::string cmd = "cd '" + d + "' && openssl req -x509" + ec +
                                "-keyout ca.key -out ca.pem -days 2 -subj /CN=ddb2os-test-ca >/dev/null 2>&1 && "
                                "openssl req -new" + ec +
                                "-keyout server.key -out server.csr -subj /CN=127.0.0.1 >/dev/null 2>&1 && "
                                "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                                "-out server.pem -days 2 -extfile ext.cnf >/dev/null 2>&1";
        REQUIRE(std::system(cmd.c_str()) == 0);
        ca = d + "/ca.pem";
        cert = d + "/server.pem";
        key = d + "/server.key";
    }
};

// No assertion here: it is polled until the server listens, and an assertion per poll made the
// binary's count vary from run to run. The address is checked once, by the caller.
bool can_connect(const std::string& host, int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) {
        ::close(fd);
        return false;
    }
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

// `openssl s_server -www` on a loopback address: answers any GET with 200 and a status page.
class tls_server {
public:
    explicit tls_server(const tls_files& f, std::string host = "127.0.0.1") : host_(std::move(host)) {
        in_addr parsed{};
        REQUIRE(::inet_pton(AF_INET, host_.c_str(), &parsed) == 1);
        {
            refusing_port free_port;  // a port the kernel just handed out; released for s_server
            port_ = free_port.port;
        }
        const std::string accept = host_ + ":" + std::to_string(port_);
        std::vector<std::string> args = {"openssl", "s_server", "-accept", accept, "-cert", f.cert,
                                         "-key",    f.key,      "-www",    "-quiet"};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        REQUIRE(posix_spawnp(&pid_, "openssl", &fa, nullptr, argv.data(), environ) == 0);
        posix_spawn_file_actions_destroy(&fa);
        const auto until = steady::now() + 10s;
        while (!can_connect(host_, port_) && steady::now() < until) std::this_thread::sleep_for(20ms);
        REQUIRE(can_connect(host_, port_));
    }
    ~tls_server() {
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    tls_server(const tls_server&) = delete;
    tls_server& operator=(const tls_server&) = delete;
    int port() const { return port_; }
    std::string url() const { return "https://" + host_ + ":" + std::to_string(port_); }

private:
    std::string host_;
    pid_t pid_ = 0;
    int port_ = 0;
};

// ---- A proxy: absolute-form requests are answered by the proxy itself ("via proxy"); CONNECT
// opens a tunnel, to 127.0.0.1 only. Records each request line. ----

void relay(int a, int b, const connection& c) {
    char buf[16384];
    while (!c.stopping()) {
        pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
        if (::poll(p, 2, 50) <= 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const ssize_t n = ::recv(p[i].fd, buf, sizeof buf, 0);
            if (n <= 0) return;
            if (::send(i == 0 ? b : a, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) return;
        }
    }
}

class proxy_server {
public:
    proxy_server()
        : server_([this](connection& c) {
              while (std::optional<received_request> r = c.read_request()) {
                  {
                      const std::lock_guard<std::mutex> lock(mutex_);
                      lines_.push_back(r->method + " " + r->target);
                  }
                  if (r->method != "CONNECT") {
                      c.write(respond(200, "via proxy").raw);
                      continue;
                  }
                  const std::size_t colon = r->target.rfind(':');
                  if (r->target.substr(0, colon) != "127.0.0.1") {
                      c.write(respond(403, "loopback only").raw);
                      return;
                  }
                  const int up = ::socket(AF_INET, SOCK_STREAM, 0);
                  sockaddr_in a{};
                  a.sin_family = AF_INET;
                  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                  a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(r->target.substr(colon + 1))));
                  if (::connect(up, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
                      ::close(up);
                      c.write(respond(502, "no upstream").raw);
                      return;
                  }
                  c.write("HTTP/1.1 200 Connection established\r\n\r\n");
                  relay(c.fd(), up, c);
                  ::close(up);
                  return;
              }
          }) {}

    std::vector<std::string> lines() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return lines_;
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }

private:
    mutable std::mutex mutex_;
    std::vector<std::string> lines_;
    server server_;
};

// ---- A transport that answers from a function, for what must not touch the network ----

class scripted_transport final : public http::transport {
public:
    using script = std::function<http::result(const http::request&)>;
    explicit scripted_transport(script s) : script_(std::move(s)) {}
    http::result send(const http::request& req, http::clock::time_point) override {
        seen.push_back(req);
        return script_(req);
    }
    std::vector<http::request> seen;

private:
    script script_;
};

http::result http_answer(long status, std::string body) {
    http::result r;
    r.res.status = status;
    r.res.body = std::move(body);
    return r;
}

std::string credentials_json(const std::string& expiration = "2030-01-01T00:00:00Z") {
    return R"({"Code":"Success","Type":"AWS-HMAC","AccessKeyId":")" + std::string(key_id) +
           R"(","SecretAccessKey":")" + secret + R"(","Token":")" + token + R"(","Expiration":")" + expiration + R"("})";
}

using test::error_of;

bool holds_secret(const std::string& s) {
    return s.find(secret) != std::string::npos || s.find(token) != std::string::npos ||
           s.find("wJalrXUtnFEMI") != std::string::npos;
}

}  // namespace

// =====================================================================================
// curl_transport
// =====================================================================================

TEST_CASE("curl_transport: requests and responses as sent and received") {
    scoped_env env;
    http_server srv([](const received_request& r) {
        if (r.target == "/missing") return respond(404, R"({"found":false})", {{"Content-Type", "application/json"}});
        if (r.method == "HEAD") return answer{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Head: 1\r\n\r\n"};
        return respond(200, "echo:" + r.method + ":" + r.body, {{"X-Reply", "yes"}, {"Content-Type", "text/plain"}});
    });
    ddb2os::curl_transport t(srv.url() + "/");
    CHECK(t.endpoint() == srv.url());

    http::result r = t.send({"GET", "/_cluster/health?local=true", {{"Accept", "application/json"}}, {}}, in(5s));
    REQUIRE(r);
    CHECK(r.error == http::error_kind::none);
    CHECK(r.res.status == 200);
    CHECK(r.res.body == "echo:GET:");
    CHECK(r.res.header_value("x-reply") == "yes");
    CHECK(r.res.header_value("content-length") == "9");

    r = t.send({"POST", "/_bulk", {{"Content-Type", "application/x-ndjson"}, {"Content-Length", "999"}}, "{}\n"}, in(5s));
    REQUIRE(r);
    CHECK(r.res.body == "echo:POST:{}\n");

    r = t.send({"DELETE", "/books", {}, {}}, in(5s));
    REQUIRE(r);
    CHECK(r.res.body == "echo:DELETE:");

    r = t.send({"PUT", "/missing", {}, "{}"}, in(5s));
    REQUIRE(r);  // an HTTP error status is a response, not a transport failure
    CHECK(r.res.status == 404);
    CHECK(r.res.body == R"({"found":false})");

    r = t.send({"HEAD", "/books", {}, {}}, http::clock::time_point::max());  // no deadline at all
    REQUIRE(r);
    CHECK(r.res.status == 200);
    CHECK(r.res.header_value("x-head") == "1");
    CHECK(r.res.body.empty());

    const auto got = srv.requests();
    REQUIRE(got.size() == 5);
    CHECK(got[0].method == "GET");
    CHECK(got[0].target == "/_cluster/health?local=true");
    CHECK(got[0].header("host") == "127.0.0.1:" + std::to_string(srv.port()));
    CHECK(got[0].count("host") == 1);
    CHECK(got[0].header("accept") == "application/json");
    CHECK(got[0].header("user-agent") == std::string("ddb2os/") + ddb2os::version_string);
    CHECK(got[1].header("content-type") == "application/x-ndjson");
    CHECK(got[1].header("content-length") == "3");  // the caller's wrong length is dropped
    CHECK(got[1].count("expect") == 0);
    CHECK(got[2].method == "DELETE");
    CHECK(got[2].header("content-length") == "0");
    // No body type the caller did not ask for (libcurl's default is a form).
    CHECK(got[3].count("content-type") == 0);
    CHECK(got[3].body == "{}");
    CHECK(got[4].method == "HEAD");
    CHECK(srv.connections() == 1);
}

TEST_CASE("curl_transport: bytes a URL may not hold raw are sent as the signer signed them") {
    // "ä" and a space in a document id: %C3%A4 and %20, upper case, as the canonical request has them
    // (libcurl would otherwise encode them after signing, in lower case).
    scoped_env env;
    std::vector<std::string> targets;
    http_server srv([&](const received_request& r) {
        targets.push_back(r.target);
        return respond(200, "ok");
    });
    ddb2os::curl_transport t(srv.url(), sigv4_options(std::make_shared<fixed_credentials>(credentials(key_id, secret))));
    REQUIRE(t.send({"GET", "/idx/_doc/\xC3\xA4 b?q=\xC3\xA4", {}, {}}, in(5s)));
    REQUIRE(targets.size() == 1);
    CHECK(targets[0] == "/idx/_doc/%C3%A4%20b?q=%C3%A4");
    CHECK(ddb2os::detail::encode_unsafe_url_bytes("/a%2Fb/\x7F\t~") == "/a%2Fb/%7F%09~");
}

TEST_CASE("curl_transport: keep-alive reuses one connection across requests") {
    scoped_env env;
    http_server srv([](const received_request&) { return respond(200, "ok"); });
    ddb2os::curl_transport t(srv.url());
    for (int i = 0; i < 5; ++i) {
        const http::result r = t.send({i % 2 ? "POST" : "GET", "/i", {}, i % 2 ? "x" : ""}, in(5s));
        REQUIRE(r);
    }
    CHECK(srv.requests().size() == 5);
    CHECK(srv.connections() == 1);
    CHECK(t.connections_opened() == 1);

    // The count is meaningful: a server that closes after each answer costs one each time.
    http_server closing([](const received_request&) {
        answer a = respond(200, "bye", {{"Connection", "close"}});
        a.close = true;
        return a;
    });
    ddb2os::curl_transport t2(closing.url());
    for (int i = 0; i < 3; ++i) REQUIRE(t2.send({"GET", "/", {}, {}}, in(5s)));
    CHECK(closing.connections() == 3);
    CHECK(t2.connections_opened() == 3);

    // Concurrent sends each borrow a handle; the connections they open are kept for later.
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&] {
            for (int j = 0; j < 5; ++j) ok += t.send({"GET", "/c", {}, {}}, in(5s)) ? 1 : 0;
        });
    for (auto& th : threads) th.join();
    CHECK(ok == 20);
    CHECK(srv.connections() <= 4);
}

TEST_CASE("curl_transport: gzip request bodies, signed over the compressed bytes") {
    scoped_env env;
    const credentials creds(key_id, secret, token);
    http_server srv([&](const received_request& r) {
        const std::string service = r.header("authorization").find("/aoss/") != std::string::npos ? "aoss" : "es";
        const bool valid = r.header("authorization") == expected_authorization(r, creds, "eu-west-1", service);
        return respond(valid ? 200 : 403, valid ? "signature ok" : "signature mismatch");
    });
    std::string bulk;
    for (int i = 0; i < 200; ++i)
        bulk += R"({"index":{"_index":"books","_id":")" + std::to_string(i) + "\"}}\n{\"title\":\"t" +
                std::to_string(i) + "\"}\n";

    SUBCASE("es, with a session token") {
        auto o = sigv4_options(std::make_shared<fixed_credentials>(creds));
        o.gzip = true;
        ddb2os::curl_transport t(srv.url(), o);
        const http::result r =
            t.send({"POST", "/_bulk?refresh=false", {{"Content-Type", "application/x-ndjson"}}, bulk}, in(5s));
        REQUIRE(r);
        CHECK(r.res.body == "signature ok");
        const received_request got = srv.requests().at(0);
        CHECK(got.header("content-encoding") == "gzip");
        CHECK(got.body.size() < bulk.size() / 4);
        CHECK(gunzip(got.body) == bulk);
        CHECK(got.header("x-amz-security-token") == token);
        CHECK(got.header("authorization").find("content-encoding") != std::string::npos);
        CHECK(got.header("authorization").find("/eu-west-1/es/aws4_request") != std::string::npos);
        CHECK(got.count("x-amz-content-sha256") == 0);
    }
    SUBCASE("aoss: x-amz-content-sha256 is the hash of the compressed bytes") {
        auto o = sigv4_options(std::make_shared<fixed_credentials>(creds), "aoss");
        o.gzip = true;
        ddb2os::curl_transport t(srv.url(), o);
        const http::result r = t.send({"POST", "/_bulk", {{"Content-Type", "application/x-ndjson"}}, bulk}, in(5s));
        REQUIRE(r);
        CHECK(r.res.body == "signature ok");
        const received_request got = srv.requests().at(0);
        CHECK(got.header("x-amz-content-sha256") == ddb2os::detail::hex(ddb2os::detail::sha256(got.body)));
        CHECK(got.header("x-amz-content-sha256") != ddb2os::detail::hex(ddb2os::detail::sha256(bulk)));
        CHECK(gunzip(got.body) == bulk);
        CHECK(got.header("authorization").find("content-length") == std::string::npos);
    }
    SUBCASE("small bodies and bodies the caller encoded are sent as they are") {
        ddb2os::curl_options o;
        o.gzip = true;
        o.gzip_min_bytes = 100;
        ddb2os::curl_transport t(srv.url(), o);
        REQUIRE(t.send({"POST", "/small", {}, "{}"}, in(5s)));
        const std::string pre = ddb2os::detail::gzip_compress(bulk);
        REQUIRE(t.send({"POST", "/pre", {{"Content-Encoding", "gzip"}}, pre}, in(5s)));
        const auto got = srv.requests();
        REQUIRE(got.size() == 2);
        CHECK(got[0].count("content-encoding") == 0);
        CHECK(got[0].body == "{}");
        CHECK(got[1].count("content-encoding") == 1);
        CHECK(got[1].body == pre);
        CHECK(gunzip(got[1].body) == bulk);
    }
    SUBCASE("by default, bodies of 1 KiB or more are compressed and smaller ones are not") {
        ddb2os::curl_options o;
        o.gzip = true;
        CHECK(o.gzip_min_bytes == 1024);
        ddb2os::curl_transport t(srv.url(), o);
        const std::string under(1023, 'a'), at(1024, 'a');
        REQUIRE(t.send({"POST", "/under", {}, under}, in(5s)));
        REQUIRE(t.send({"POST", "/at", {}, at}, in(5s)));
        const auto got = srv.requests();
        REQUIRE(got.size() == 2);
        CHECK(got[0].count("content-encoding") == 0);
        CHECK(got[0].body == under);
        CHECK(got[1].count("content-encoding") == 1);
        CHECK(gunzip(got[1].body) == at);
    }
}

TEST_CASE("curl_transport: SigV4 headers replace the caller's; absolute URLs are signed for their host") {
    scoped_env env;
    const credentials creds(key_id, secret);
    http_server srv([&](const received_request& r) {
        const std::string service = r.header("x-amz-target").empty() ? "es" : "dynamodb";
        const bool valid = r.header("authorization") == expected_authorization(r, creds, "eu-west-1", service);
        return respond(valid ? 200 : 403, valid ? "signature ok" : "signature mismatch");
    });
    {
        ddb2os::curl_transport t(srv.url(), sigv4_options(std::make_shared<fixed_credentials>(creds)));
        const http::result r = t.send(
            {"GET", "/books/_doc/a%2Fb?routing=x%20y&q=a:b", {{"x-amz-date", "19990101T000000Z"}, {"Authorization", "Basic Zm9v"}}, {}},
            in(5s));
        REQUIRE(r);
        CHECK(r.res.body == "signature ok");
        const received_request got = srv.requests().at(0);
        CHECK(got.count("x-amz-date") == 1);
        CHECK(got.header("x-amz-date") != "19990101T000000Z");
        CHECK(got.count("authorization") == 1);
        CHECK(got.header("authorization").rfind("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/", 0) == 0);
        CHECK(got.count("x-amz-security-token") == 0);

        // A header whose value is only blanks: signed with an empty value, so it must be sent (curl
        // drops "Name:   ", and the signature then named a header the server never got).
        const http::result blank = t.send({"GET", "/books", {{"X-Blank", "   "}}, {}}, in(5s));
        REQUIRE(blank);
        CHECK(blank.res.body == "signature ok");
        CHECK(srv.requests().at(1).count("x-blank") == 1);
        CHECK(srv.requests().at(1).header("authorization").find("x-blank") != std::string::npos);
    }
    {
        // DescribeTable-style: a transport signing for dynamodb, with no endpoint of its own.
        ddb2os::curl_transport t("", sigv4_options(std::make_shared<fixed_credentials>(creds), "dynamodb"));
        const http::result r =
            t.send({"POST", srv.url() + "/",
                    {{"X-Amz-Target", "DynamoDB_20120810.DescribeTable"}, {"Content-Type", "application/x-amz-json-1.0"}},
                    R"({"TableName":"books"})"},
                   in(5s));
        REQUIRE(r);
        CHECK(r.res.body == "signature ok");
        const received_request got = srv.requests().at(2);
        CHECK(got.header("host") == "127.0.0.1:" + std::to_string(srv.port()));
        CHECK(got.header("authorization").find("/eu-west-1/dynamodb/aws4_request") != std::string::npos);
        CHECK(got.header("authorization").find("x-amz-target") != std::string::npos);

        const http::result no_endpoint = t.send({"GET", "/", {}, {}}, in(5s));
        CHECK(no_endpoint.error == http::error_kind::other);
        CHECK(no_endpoint.message == "target is a path but the transport has no endpoint");
    }
}

TEST_CASE("curl_transport: HTTP basic authentication, only for the endpoint's origin") {
    scoped_env env;
    http_server srv([](const received_request& r) { return respond(200, r.header("authorization")); });
    ddb2os::curl_options o;
    o.auth = ddb2os::authentication::basic("admin", "s3cr3t!");
    ddb2os::curl_transport t(srv.url(), o);
    http::result r = t.send({"GET", "/", {}, {}}, in(5s));
    REQUIRE(r);
    CHECK(r.res.body == "Basic YWRtaW46czNjcjN0IQ==");
    r = t.send({"GET", srv.url() + "/same-origin", {}, {}}, in(5s));
    REQUIRE(r);
    CHECK(r.res.body == "Basic YWRtaW46czNjcjN0IQ==");
    // Another origin (the same server under another name) never sees the password.
    r = t.send({"GET", "http://localhost:" + std::to_string(srv.port()) + "/other", {}, {}}, in(5s));
    REQUIRE(r);
    CHECK(r.res.body == "");
    CHECK(error_of([] { ddb2os::curl_options b; b.auth = ddb2os::authentication::basic("u", "p");
                        ddb2os::curl_transport x("", b); }) ==
          "[ddb2os.transport.bad_option] basic authentication needs an endpoint");
}

TEST_CASE("curl_transport: timeouts come back as error_kind::timeout within the deadline") {
    scoped_env env;
    http_server silent([](const received_request&) { return answer{{}, false, true}; });

    SUBCASE("the deadline") {
        ddb2os::curl_transport t(silent.url());  // 60 s request timeout: the deadline is what stops it
        const auto start = steady::now();
        const http::result r = t.send({"GET", "/slow", {}, {}}, in(400ms));
        const auto took = steady::now() - start;
        CHECK(r.error == http::error_kind::timeout);
        CHECK(took >= 350ms);
        CHECK(took < 2s);
        CHECK(r.message.rfind("GET http://127.0.0.1:" + std::to_string(silent.port()) + "/slow: Timeout was reached", 0) == 0);
    }
    SUBCASE("the request timeout") {
        ddb2os::curl_options o;
        o.timeout = 300ms;
        ddb2os::curl_transport t(silent.url(), o);
        const auto start = steady::now();
        const http::result r = t.send({"POST", "/slow", {}, "body"}, in(30s));
        CHECK(r.error == http::error_kind::timeout);
        CHECK(steady::now() - start < 2s);
    }
    SUBCASE("a deadline already past: nothing is sent") {
        ddb2os::curl_transport t(silent.url());
        for (const http::clock::time_point past : {http::clock::now() - 1ms, http::clock::time_point::min()}) {
            const http::result r = t.send({"GET", "/", {}, {}}, past);
            CHECK(r.error == http::error_kind::timeout);
            CHECK(r.message == "the deadline passed before sending");
        }
        std::this_thread::sleep_for(100ms);
        CHECK(silent.connections() == 0);
    }
}

TEST_CASE("curl_transport: refused, and closed mid-response") {
    scoped_env env;
    {
        refusing_port nobody;
        ddb2os::curl_transport t(nobody.url());
        const http::result r = t.send({"GET", "/", {}, {}}, in(5s));
        CHECK(r.error == http::error_kind::connect);
        CHECK(r.message.find(refused) != std::string::npos);
        CHECK(r.res.status == 0);
    }
    http_server cut([](const received_request& r) {
        if (r.target == "/partial") return answer{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", true};
        return answer{{}, true};  // closes without a byte
    });
    ddb2os::curl_transport t(cut.url());
    http::result r = t.send({"GET", "/partial", {}, {}}, in(5s));
    CHECK(r.error == http::error_kind::send_receive);
    CHECK(r.res.body.empty());
    CHECK(r.res.headers.empty());
    r = t.send({"POST", "/nothing", {}, "x"}, in(5s));
    CHECK(r.error == http::error_kind::send_receive);
    CHECK(r.message.find("Server returned nothing") != std::string::npos);
    // A TLS handshake the peer cuts (CURLE_SSL_CONNECT_ERROR): a broken connection, retried as one.
    server closer([](connection&) {});  // accepts, then closes at once
    r = t.send({"GET", "https://127.0.0.1:" + std::to_string(closer.port()) + "/", {}, {}}, in(5s));
    CHECK(r.error == http::error_kind::send_receive);
    CHECK(r.message.find("SSL connect error") != std::string::npos);
}

TEST_CASE("curl_transport: https to a plain-HTTP port is a TLS failure, not a reset") {
    // OpenSSL reads the HTTP answer to its hello as "wrong version number": the same every time, so
    // the engine tries it three times (error_kind::tls), not until the deadline as a reset.
    scoped_env env;
    // A plain-HTTP server as OpenSearch's is: it answers a TLS hello with 400 Bad Request.
    refusing_port plain;
    REQUIRE(::listen(plain.fd, 4) == 0);
    std::thread server([&] {
        const int c = ::accept(plain.fd, nullptr, nullptr);
        if (c < 0) return;
        char hello[512];
        (void)::recv(c, hello, sizeof hello, 0);
        const char answer[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        (void)::send(c, answer, sizeof answer - 1, MSG_NOSIGNAL);
        ::close(c);
    });
    ddb2os::curl_transport t("https://127.0.0.1:" + std::to_string(plain.port));
    const http::result r = t.send({"GET", "/", {}, {}}, in(10s));
    server.join();
    CHECK(r.error == http::error_kind::tls);
    CHECK(r.message.find("wrong version number") != std::string::npos);
}

TEST_CASE("curl_transport: TLS verified with a CA file, refused without it") {
    scoped_env env;
    tls_files files;
    tls_server tls(files);
    {
        ddb2os::curl_options o;
        o.ca_file = files.ca;
        ddb2os::curl_transport t(tls.url(), o);
        const http::result r = t.send({"GET", "/", {}, {}}, in(10s));
        REQUIRE(r);
        CHECK(r.res.status == 200);
        CHECK(r.res.body.find("<HTML>") != std::string::npos);
    }
    {
        ddb2os::curl_transport t(tls.url());  // the system CAs do not know the test CA
        const http::result r = t.send({"GET", "/", {}, {}}, in(10s));
        CHECK(r.error == http::error_kind::tls);
        CHECK(r.message.find("certificate") != std::string::npos);
    }
    {
        ddb2os::curl_options o;
        o.ca_file = files.ca;
        // A trusted certificate for another address (it names 127.0.0.1 and localhost): refused.
        tls_server elsewhere(files, "127.0.0.2");
        ddb2os::curl_transport t(elsewhere.url(), o);
        const http::result r = t.send({"GET", "/", {}, {}}, in(10s));
        CHECK(r.error == http::error_kind::tls);
        CHECK(r.message.find("127.0.0.2") != std::string::npos);
    }
    {
        ddb2os::curl_options o;
        o.insecure = true;
        ddb2os::curl_transport t(tls.url(), o);
        const http::result r = t.send({"GET", "/", {}, {}}, in(10s));
        REQUIRE(r);
        CHECK(r.res.status == 200);
    }
}

TEST_CASE("curl_transport: proxies from the environment") {
    http_server direct([](const received_request&) { return respond(200, "direct"); });
    proxy_server proxy;
    const std::string target = direct.url() + "/p";

    SUBCASE("http_proxy") {
        scoped_env env({{"http_proxy", proxy.url()}});
        ddb2os::curl_transport t(direct.url());
        const http::result r = t.send({"GET", "/p", {}, {}}, in(5s));
        REQUIRE(r);
        CHECK(r.res.body == "via proxy");
        REQUIRE(proxy.lines().size() == 1);
        CHECK(proxy.lines()[0] == "GET " + target);
        CHECK(direct.connections() == 0);
    }
    SUBCASE("HTTP_PROXY, which libcurl alone ignores") {
        scoped_env env({{"HTTP_PROXY", proxy.url()}});
        ddb2os::curl_transport t(direct.url());
        const http::result r = t.send({"GET", "/p", {}, {}}, in(5s));
        REQUIRE(r);
        CHECK(r.res.body == "via proxy");
        CHECK(proxy.lines().size() == 1);
    }
    SUBCASE("HTTP_PROXY in a CGI program is not trusted") {
        scoped_env env({{"HTTP_PROXY", proxy.url()}, {"REQUEST_METHOD", "GET"}});
        ddb2os::curl_transport t(direct.url());
        const http::result r = t.send({"GET", "/p", {}, {}}, in(5s));
        REQUIRE(r);
        CHECK(r.res.body == "direct");
        CHECK(proxy.lines().empty());
    }
    SUBCASE("NO_PROXY wins, for either variable") {
        for (const char* var : {"http_proxy", "HTTP_PROXY"}) {
            for (const char* no : {"NO_PROXY", "no_proxy"}) {
                scoped_env env({{var, proxy.url()}, {no, "localhost,127.0.0.1"}});
                ddb2os::curl_transport t(direct.url());
                const http::result r = t.send({"GET", "/p", {}, {}}, in(5s));
                REQUIRE(r);
                CHECK(r.res.body == "direct");
            }
        }
        CHECK(proxy.lines().empty());
    }
    SUBCASE("never for the credential endpoints (this host's own; a proxy would see the container's token)") {
        scoped_env env({{"http_proxy", proxy.url()}, {"HTTP_PROXY", proxy.url()}, {"ALL_PROXY", proxy.url()}});
        const auto t = ddb2os::make_metadata_transport();
        const http::result r = t->send({"GET", target, {{"Authorization", "container-token"}}, {}}, in(5s));
        REQUIRE(r);
        CHECK(r.res.body == "direct");
        CHECK(proxy.lines().empty());
    }
    SUBCASE("HTTPS_PROXY tunnels TLS with CONNECT") {
        tls_files files;
        tls_server tls(files);
        for (const char* var : {"HTTPS_PROXY", "https_proxy"}) {
            scoped_env env({{var, proxy.url()}});
            ddb2os::curl_options o;
            o.ca_file = files.ca;
            ddb2os::curl_transport t(tls.url(), o);
            const http::result r = t.send({"GET", "/", {}, {}}, in(10s));
            REQUIRE(r);
            CHECK(r.res.status == 200);
            CHECK(r.res.header_value("content-type") == "text/html");  // the tunnel's own answer is dropped
        }
        const auto lines = proxy.lines();
        REQUIRE(lines.size() == 2);
        CHECK(lines[0] == "CONNECT 127.0.0.1:" + std::to_string(tls.port()));
        CHECK(lines[1] == lines[0]);
    }
}

TEST_CASE("curl_transport: no credentials is error_kind::credentials, and nothing is sent") {
    scoped_env env;
    http_server srv([](const received_request&) { return respond(200, "ok"); });
    auto nothing = std::make_shared<fixed_credentials>();
    ddb2os::curl_transport t(srv.url(), sigv4_options(nothing));
    const http::result r = t.send({"GET", "/", {}, {}}, in(5s));
    CHECK(r.error == http::error_kind::credentials);
    CHECK(r.message == "no AWS credentials found; tried: a test source (empty)");
    std::this_thread::sleep_for(50ms);
    CHECK(srv.connections() == 0);

    // A provider given by reference, which the caller keeps alive.
    fixed_credentials have(credentials(key_id, secret));
    ddb2os::curl_options o;
    o.auth = ddb2os::authentication::sigv4("es", "eu-west-1", have);
    ddb2os::curl_transport t2(srv.url(), o);
    REQUIRE(t2.send({"GET", "/", {}, {}}, in(5s)));
    CHECK(have.calls == 1);
}

TEST_CASE("curl_transport: the deadline counts the time credentials take to load") {
    // A container or instance-metadata call can take seconds; the request gets only what is left.
    struct slow_credentials final : ddb2os::credentials_provider {
        ddb2os::credentials_lookup lookup() override {
            std::this_thread::sleep_for(700ms);
            return {credentials(key_id, secret), ""};
        }
    };
    scoped_env env;
    http_server srv([](const received_request&) { return respond(200, "ok"); });
    ddb2os::curl_transport t(srv.url(), sigv4_options(std::make_shared<slow_credentials>()));
    const auto start = std::chrono::steady_clock::now();
    const http::result r = t.send({"GET", "/", {}, {}}, in(300ms));
    CHECK(r.error == http::error_kind::timeout);
    CHECK(r.message == "GET " + srv.url() + "/: the deadline passed while the request was prepared (credentials, signing, gzip)");
    CHECK(std::chrono::steady_clock::now() - start < 2500ms);
    CHECK(srv.connections() == 0);
}

TEST_CASE("credentials_http: a fetch over the network stops at the deadline of the request that wanted it") {
    // An endpoint that never answers: each attempt waits out the deadline it is given. Before, each of
    // the container endpoint's 3 attempts had its own 2 s (a request with 200 ms left took 6 s), and a
    // thread waiting for another's refresh waited for all of it.
    struct hanging_transport final : http::transport {
        std::mutex m;
        std::vector<http::clock::time_point> deadlines;
        http::result send(const http::request&, http::clock::time_point deadline) override {
            {
                const std::lock_guard<std::mutex> lock(m);
                deadlines.push_back(deadline);
            }
            std::this_thread::sleep_until(std::min(deadline, http::clock::now() + 3s));
            http::result r;
            r.error = http::error_kind::timeout;
            r.message = "timed out";
            return r;
        }
    };
    scoped_env env;
    const auto hanging = std::make_shared<hanging_transport>();
    ddb2os::container_credentials container(
        hanging, ddb2os::environment_from({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds"}}));
    const auto elapsed_within = [](auto&& f) {
        const auto start = http::clock::now();
        f();
        return http::clock::now() - start;
    };

    auto deadline = http::clock::now() + 150ms;
    CHECK(elapsed_within([&] {
              CHECK(error_of([&] { container.load(deadline); }) ==
                    "[ddb2os.credentials.unreachable] container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI) "
                    "failed: timed out");
          }) < 2s);
    REQUIRE(hanging->deadlines.size() == 1);  // the one attempt that reached the deadline; no other after it
    CHECK(hanging->deadlines[0] <= deadline);

    // Instance metadata: three calls in a row (token, role, credentials), none past the deadline.
    hanging->deadlines.clear();
    ddb2os::imds_credentials imds(hanging, ddb2os::environment_from({}));
    deadline = http::clock::now() + 150ms;
    CHECK(elapsed_within([&] { CHECK_FALSE(imds.lookup_within(deadline).found); }) < 2s);
    REQUIRE(hanging->deadlines.size() == 1);
    CHECK(hanging->deadlines[0] <= deadline);

    // The cache in front: a thread that finds another fetching waits until its own deadline only.
    hanging->deadlines.clear();
    const auto cached = std::make_shared<ddb2os::refreshing_credentials>(std::make_shared<ddb2os::container_credentials>(
        hanging, ddb2os::environment_from({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds"}})));
    std::thread first([&] { CHECK_THROWS_AS(cached->load(http::clock::now() + 1500ms), ddb2os::error); });
    while (true) {  // until the first thread is inside the fetch
        {
            const std::lock_guard<std::mutex> lock(hanging->m);
            if (!hanging->deadlines.empty()) break;
        }
        std::this_thread::sleep_for(1ms);
    }
    CHECK(elapsed_within([&] {
              CHECK(error_of([&] { cached->load(http::clock::now() + 100ms); }) ==
                    "[ddb2os.credentials.unreachable] the deadline passed while another thread was fetching the credentials");
          }) < 1s);
    first.join();

    // And through the transport: a request given 200 ms returns in about that, not after the fetch's 6 s.
    ddb2os::curl_transport t("http://127.0.0.1:9", sigv4_options(std::make_shared<ddb2os::container_credentials>(
                                                       hanging, ddb2os::environment_from({{"AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                                                                           "http://127.0.0.1:9/creds"}}))));
    http::result r;
    CHECK(elapsed_within([&] { r = t.send({"GET", "/", {}, {}}, in(200ms)); }) < 2s);
    CHECK(r.error == http::error_kind::credentials);
}

TEST_CASE("curl_transport: credentials the service calls expired or invalid are dropped from the cache") {
    // Static credentials (no Expiration) are kept for good: before, a revoked session kept signing
    // every request until the process ended; credentials with an Expiration until their refresh window.
    scoped_env env;
    std::atomic<int> answer{0};
    http_server srv([&](const received_request&) {
        switch (answer.load()) {
            case 1: return respond(403, R"({"message":"The security token included in the request is expired"})");
            case 2: return respond(400, R"({"__type":"com.amazon.coral.service#ExpiredTokenException","message":"..."})");
            case 3: return respond(403, R"({"Message":"User: arn:aws:sts::1:assumed-role/r is not authorized to perform: es:ESHttpPost"})");
            default: return respond(200, "ok");
        }
    });
    const auto source = std::make_shared<fixed_credentials>(credentials(key_id, secret));
    ddb2os::curl_transport t(srv.url(), sigv4_options(std::make_shared<ddb2os::refreshing_credentials>(source)));
    const auto send = [&](int a) {
        answer = a;
        return t.send({"POST", "/_bulk", {}, "{}\n"}, in(5s));
    };
    REQUIRE(send(0));
    REQUIRE(send(0));
    CHECK(source->calls == 1);  // cached
    const http::result refused = send(1);
    REQUIRE(refused);
    CHECK(refused.res.status == 403);  // answered as it was: the engine reports the batch
    CHECK(source->calls == 1);
    REQUIRE(send(0));
    CHECK(source->calls == 2);  // asked again after the refusal
    REQUIRE(send(2));           // DynamoDB's way of saying it (DescribeTable)
    REQUIRE(send(0));
    CHECK(source->calls == 3);
    REQUIRE(send(3));  // a 403 for a missing permission: new credentials would not help
    REQUIRE(send(0));
    CHECK(source->calls == 3);
}

TEST_CASE("curl_transport: no message holds a secret") {
    refusing_port nobody;
    {
        scoped_env env;
        ddb2os::curl_options o;
        o.auth = ddb2os::authentication::basic("admin", "pa55word-never-shown");
        ddb2os::curl_transport t(nobody.url(), o);
        const http::result r = t.send({"GET", "/x?token=abc", {}, {}}, in(5s));
        CHECK(r.error == http::error_kind::connect);
        CHECK(r.message.find("pa55word") == std::string::npos);
        CHECK(r.message.find("token=abc") == std::string::npos);  // no query in messages
        CHECK(r.message.rfind("GET http://127.0.0.1:" + std::to_string(nobody.port) + "/x: ", 0) == 0);
    }
    {
        scoped_env env;
        ddb2os::curl_transport t(nobody.url(),
                                 sigv4_options(std::make_shared<fixed_credentials>(credentials(key_id, secret, token))));
        const http::result r = t.send({"POST", "/_bulk", {}, "{}\n"}, in(5s));
        CHECK(r.error == http::error_kind::connect);
        CHECK_FALSE(holds_secret(r.message));
        CHECK(r.message.find("Signature") == std::string::npos);
    }
    {
        // A proxy URL with a password, which libcurl may quote: scrubbed.
        scoped_env env({{"http_proxy", "http://puser:proxy-pa55@127.0.0.1:" + std::to_string(nobody.port)}});
        http_server direct([](const received_request&) { return respond(200, "direct"); });
        ddb2os::curl_transport t(direct.url());
        const http::result r = t.send({"GET", "/", {}, {}}, in(5s));
        CHECK(r.error == http::error_kind::connect);
        CHECK(r.message.find("proxy-pa55") == std::string::npos);
    }
    CHECK(ddb2os::detail::scrub("see http://u:pw@host/x and s3cr3tvalue", {"s3cr3tvalue"}) == "see http://****@host/x and ****");
}

TEST_CASE("curl_transport: an error answer that echoes the request's headers holds no secret") {
    // Some proxies and gateways answer 401/403 with the request they got; the engine quotes error answers.
    const auto echo = [](const received_request& r) {
        std::string body = "denied. Request headers:";
        for (const auto& h : r.headers) body += " " + h.name + ": " + h.value + ";";
        return respond(r.target == "/ok" ? 200 : r.target == "/moved" ? 307 : 401, body);
    };
    http_server server(echo);
    scoped_env env;
    {
        ddb2os::curl_options o;
        o.auth = ddb2os::authentication::basic("admin", "pa55word-never-shown");
        ddb2os::curl_transport t(server.url(), o);
        const http::result r = t.send({"GET", "/x", {}, {}}, in(5s));
        REQUIRE(r.res.status == 401);
        CHECK(r.res.body.find("Authorization: Basic ****;") != std::string::npos);
        CHECK(r.res.body.find("YWRtaW46") == std::string::npos);  // base64 of "admin:"
        // A successful answer is not rewritten; any other is, a redirect too (it is quoted as a failure).
        CHECK(t.send({"GET", "/ok", {}, {}}, in(5s)).res.body.find("YWRtaW46") != std::string::npos);
        const http::result moved = t.send({"GET", "/moved", {}, {}}, in(5s));
        REQUIRE(moved.res.status == 307);
        CHECK(moved.res.body.find("Authorization: Basic ****;") != std::string::npos);
    }
    {
        ddb2os::curl_transport t(server.url(),
                                 sigv4_options(std::make_shared<fixed_credentials>(credentials(key_id, secret, token))));
        const http::result r = t.send({"POST", "/_bulk", {}, "{}\n"}, in(5s));
        REQUIRE(r.res.status == 401);
        CHECK_FALSE(holds_secret(r.res.body));
        CHECK(r.res.body.find("X-Amz-Security-Token: ****;") != std::string::npos);
        CHECK(r.res.body.find("Signature=") == std::string::npos);  // the Authorization header's value
        CHECK(r.res.body.find("Authorization: ****;") != std::string::npos);
    }
    {
        // A caller's own Authorization header (a bearer token), with no authentication configured.
        ddb2os::curl_options o;
        o.auth = ddb2os::authentication::none();
        ddb2os::curl_transport t(server.url(), o);
        const http::result r = t.send({"GET", "/x", {{"Authorization", "Bearer tok-0123456789"}}, {}}, in(5s));
        REQUIRE(r.res.status == 401);
        CHECK(r.res.body.find("tok-0123456789") == std::string::npos);
        CHECK(r.res.body.find("Authorization: ****;") != std::string::npos);
    }
}

TEST_CASE("curl_transport: credentials with a line break are refused, never sent as two headers") {
    http_server server([](const received_request&) { return respond(200, "{}"); });
    scoped_env env;
    for (const auto& creds : {credentials(key_id, secret, "tok\r\nX-Injected: 1"), credentials("AKID\nX-Injected: 1", secret)}) {
        ddb2os::curl_transport t(server.url(), sigv4_options(std::make_shared<fixed_credentials>(creds)));
        const http::result r = t.send({"POST", "/_bulk", {}, "{}\n"}, in(5s));
        CHECK(r.error == http::error_kind::credentials);
        CHECK(r.message.find("the credentials hold a control character (a line break?)") != std::string::npos);
        CHECK(r.message.find("tok") == std::string::npos);
        CHECK(r.message.find("Injected") == std::string::npos);
    }
    CHECK(server.requests().empty());
}

TEST_CASE("curl_transport: invalid endpoints and requests") {
    scoped_env env;
    CHECK(error_of([] { ddb2os::curl_transport t("ftp://host"); }) ==
          "[ddb2os.transport.bad_endpoint] endpoint scheme must be http or https");
    CHECK(error_of([] { ddb2os::curl_transport t("https://user:pw@host"); }) ==
          "[ddb2os.transport.bad_endpoint] endpoint must be scheme://host[:port], without user, path or query");
    CHECK(error_of([] { ddb2os::curl_transport t("https://host/prefix"); }) ==
          "[ddb2os.transport.bad_endpoint] endpoint must be scheme://host[:port], without user, path or query");
    CHECK(error_of([] { ddb2os::curl_transport t("host:9200"); }) ==
          "[ddb2os.transport.bad_endpoint] endpoint is not scheme://host[:port]");
    CHECK(error_of([] { ddb2os::curl_options o; o.timeout = 0ms; ddb2os::curl_transport t("http://h", o); }) ==
          "[ddb2os.transport.bad_option] timeouts must be positive");
    CHECK(error_of([] { ddb2os::authentication::sigv4("", "us-east-1", std::make_shared<fixed_credentials>()); }) ==
          "[ddb2os.transport.bad_option] SigV4 service is empty");

    http_server srv([](const received_request&) { return respond(200, "ok"); });
    ddb2os::curl_transport t(srv.url());
    http::result r = t.send({"GET", "relative", {}, {}}, in(5s));
    CHECK(r.error == http::error_kind::other);
    CHECK(r.message == "target is neither a path starting with '/' nor an http(s) URL");
    r = t.send({"GET / HTTP/1.1\r\nX:", "/", {}, {}}, in(5s));
    CHECK(r.error == http::error_kind::other);
    CHECK(r.message == "the method is not an HTTP token");
    r = t.send({"GET", "/", {{"X-Bad", "a\r\nInjected: yes"}}, {}}, in(5s));
    CHECK(r.error == http::error_kind::other);
    CHECK(r.message == "GET http://127.0.0.1:" + std::to_string(srv.port()) +
                           "/: a header name is not a token or a value holds a line break");
    CHECK(srv.requests().empty());
}

TEST_CASE("curl_transport: scrubbing, refused session tokens and error kinds, checked without a network") {
    using ddb2os::detail::scrub;
    // Every occurrence, a secret as short as 4 bytes (a password), userinfo that ends the message.
    CHECK(scrub("pw=hunter2, again hunter2", {"hunter2"}) == "pw=****, again ****");
    CHECK(scrub("user admin:pa55 denied", {"pa55"}) == "user admin:**** denied");
    CHECK(scrub("Could not resolve proxy http://u:pw@proxy", {}) == "Could not resolve proxy http://****@proxy");

    // Each of AWS's ways of refusing a session token drops the cached credentials.
    CHECK(ddb2os::detail::says_token_rejected(
        R"({"__type":"UnrecognizedClientException","message":"The security token included in the request is invalid."})"));
    CHECK(ddb2os::detail::says_token_rejected("<Error><Code>ExpiredToken</Code></Error>"));
    CHECK_FALSE(ddb2os::detail::says_token_rejected(R"({"message":"not authorized to perform: es:ESHttpPost"})"));

    // The engine retries connect, timeout and send_receive failures until its deadline; tls and other three times.
    using ddb2os::detail::curl_error_kind;
    CHECK(curl_error_kind(CURLE_COULDNT_RESOLVE_HOST) == http::error_kind::connect);
    CHECK(curl_error_kind(CURLE_COULDNT_RESOLVE_PROXY) == http::error_kind::connect);
    CHECK(curl_error_kind(CURLE_COULDNT_CONNECT) == http::error_kind::connect);
    CHECK(curl_error_kind(CURLE_OPERATION_TIMEDOUT) == http::error_kind::timeout);
    CHECK(curl_error_kind(CURLE_SEND_ERROR) == http::error_kind::send_receive);
    CHECK(curl_error_kind(CURLE_RECV_ERROR) == http::error_kind::send_receive);
    CHECK(curl_error_kind(CURLE_SSL_CONNECT_ERROR) == http::error_kind::send_receive);
    CHECK(curl_error_kind(CURLE_PEER_FAILED_VERIFICATION) == http::error_kind::tls);
    CHECK(curl_error_kind(CURLE_URL_MALFORMAT) == http::error_kind::other);

    // A NUL in a header value is refused like a line break (libcurl would end the header there).
    CHECK_FALSE(ddb2os::detail::valid_header({"X-A", std::string("a\0b", 3)}));
    CHECK(ddb2os::detail::valid_header({"X-A", "a b"}));
}

// =====================================================================================
// Credential sources over HTTP
// =====================================================================================

TEST_CASE("credentials_http: ISO-8601 expiration times") {
    using ddb2os::detail::parse_iso8601;
    const auto at = [](std::int64_t s) { return std::chrono::system_clock::time_point(std::chrono::seconds(s)); };
    CHECK(parse_iso8601("2015-08-30T12:36:00Z") == at(1440938160));
    CHECK(parse_iso8601("2015-08-30T12:36:00.123Z") == at(1440938160));
    CHECK(parse_iso8601("2015-08-30T14:36:00+02:00") == at(1440938160));
    CHECK(parse_iso8601("2015-08-30T10:06:00-0230") == at(1440938160));
    CHECK(parse_iso8601("1970-01-01t00:00:00z") == at(0));
    CHECK(parse_iso8601("2024-02-29T00:00:00Z") == at(1709164800));
    // Past system_clock's range (nanoseconds: 1678-2261): clamped inside it, not overflowed (UBSan
    // caught the overflow), so a far-future Expiration stays in the future and a far-past one in the past.
    const auto far = *parse_iso8601("9999-12-31T23:59:59Z");
    CHECK(far > std::chrono::system_clock::now() + std::chrono::hours(24 * 365 * 200));
    CHECK(far - std::chrono::minutes(5) < far);
    const auto ancient = *parse_iso8601("0001-01-01T00:00:00Z");
    CHECK(ancient < at(0));
    CHECK(ancient - std::chrono::minutes(5) < ancient);
    CHECK_FALSE(parse_iso8601("2015-08-30T12:36:00"));
    CHECK_FALSE(parse_iso8601("2015-08-30 12:36:00Z"));
    CHECK_FALSE(parse_iso8601("2015-13-30T12:36:00Z"));
    CHECK_FALSE(parse_iso8601("2015-08-30T12:36:00Zx"));
    CHECK_FALSE(parse_iso8601("2015-08-30T12:36:00.Z"));
    CHECK_FALSE(parse_iso8601(""));
}

TEST_CASE("credentials_http: the container endpoint") {
    scoped_env env;
    std::string expected_authorization = "container-token-1";
    std::atomic<int> failures{0};
    http_server srv([&](const received_request& r) {
        if (r.target == "/v2/credentials/flaky" && failures-- > 0) return respond(503, "busy");
        if (r.target == "/bad-json") return respond(200, std::string("{\"SecretAccessKey\":\"") + secret + "\",");
        if (r.target == "/no-secret") return respond(200, R"({"AccessKeyId":"AKID"})");
        if (r.header("authorization") != expected_authorization) return respond(401, "no");
        return respond(200, credentials_json(), {{"Content-Type", "application/json"}});
    });
    const auto metadata = std::shared_ptr<http::transport>(ddb2os::make_metadata_transport());
    ddb2os::container_credentials_options local;
    local.relative_uri_host = srv.url();

    SUBCASE("relative URI (ECS), token from the environment") {
        ddb2os::container_credentials c(
            metadata,
            ddb2os::environment_from({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc"},
                                      {"AWS_CONTAINER_CREDENTIALS_FULL_URI", srv.url() + "/ignored"},
                                      {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-token-1"}}),
            local);
        const credentials got = c.load();
        CHECK(got.access_key_id() == key_id);
        CHECK(got.secret_access_key() == secret);
        CHECK(got.session_token() == token);
        REQUIRE(got.expiration());
        CHECK(*got.expiration() == *ddb2os::detail::parse_iso8601("2030-01-01T00:00:00Z"));
        const auto reqs = srv.requests();
        REQUIRE(reqs.size() == 1);
        CHECK(reqs[0].method == "GET");
        CHECK(reqs[0].target == "/v2/credentials/abc");
        CHECK(reqs[0].header("accept") == "application/json");
        CHECK_FALSE(holds_secret(got.to_string()));
    }
    SUBCASE("full URI (EKS Pod Identity), token file read at each fetch") {
        temp_dir tmp;
        const std::string file = tmp.write("token", "container-token-1\n");
        ddb2os::container_credentials c(
            metadata,
            ddb2os::environment_from({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", srv.url() + "/v1/credentials"},
                                      {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", file},
                                      {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "loses-to-the-file"}}));
        CHECK(c.load().access_key_id() == key_id);
        tmp.write("token", "container-token-2");
        expected_authorization = "container-token-2";
        CHECK(c.load().access_key_id() == key_id);
        const auto reqs = srv.requests();
        REQUIRE(reqs.size() == 2);
        CHECK(reqs[0].header("authorization") == "container-token-1");
        CHECK(reqs[1].header("authorization") == "container-token-2");
        CHECK(reqs[1].target == "/v1/credentials");
    }
    SUBCASE("5xx is retried") {
        failures = 2;
        ddb2os::container_credentials c(
            metadata,
            ddb2os::environment_from({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/flaky"},
                                      {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-token-1"}}),
            local);
        CHECK(c.load().access_key_id() == key_id);
        CHECK(srv.requests().size() == 3);
    }
    SUBCASE("configured but failing is an error, never a fall-through") {
        const auto with = [&](const std::string& path, std::map<std::string, std::string> extra = {}) {
            extra["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = srv.url() + path;
            return ddb2os::container_credentials(metadata, ddb2os::environment_from(extra));
        };
        CHECK(error_of([&] { with("/v1/credentials").lookup(); }) ==
              "[ddb2os.credentials.refused] container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI) "
              "answered HTTP 401");
        const std::string bad_json = error_of([&] { with("/bad-json").lookup(); });
        CHECK(bad_json ==
              "[ddb2os.credentials.bad_response] container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI) "
              "did not return a JSON object");
        CHECK(error_of([&] { with("/no-secret").lookup(); }) ==
              "[ddb2os.credentials.bad_response] container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI) "
              "returned no SecretAccessKey");
        refusing_port nobody;
        ddb2os::container_credentials_options fast;
        fast.attempts = 2;
        ddb2os::container_credentials down(
            metadata, ddb2os::environment_from({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", nobody.url() + "/creds"}}), fast);
        const std::string unreachable = error_of([&] { down.lookup(); });
        CHECK(unreachable.rfind("[ddb2os.credentials.unreachable] container credentials endpoint "
                                "(AWS_CONTAINER_CREDENTIALS_FULL_URI) failed: ",
                                0) == 0);
        CHECK(unreachable.find(refused) != std::string::npos);
        // Not the URL: a relative URI's path is a bearer name for the task's credentials.
        CHECK(unreachable.find("/creds") == std::string::npos);
        CHECK(unreachable.find("GET ") == std::string::npos);
    }
    SUBCASE("not configured, and refused configurations (no request made)") {
        scripted_transport never([](const http::request&) -> http::result {
            FAIL("no request expected");
            return {};
        });
        std::shared_ptr<http::transport> t(std::shared_ptr<void>(), &never);
        ddb2os::container_credentials none(t, ddb2os::environment_from({}));
        const ddb2os::credentials_lookup l = none.lookup();
        CHECK_FALSE(l.found);
        CHECK(l.tried ==
              "container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI not set)");
        const auto full = [&](const std::string& uri) {
            return error_of([&] {
                ddb2os::container_credentials(t, ddb2os::environment_from({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", uri}}))
                    .lookup();
            });
        };
        const std::string refused =
            "[ddb2os.credentials.bad_container_uri] AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a "
            "loopback address or the container host (169.254.170.2, 169.254.170.23, fd00:ec2::23)";
        CHECK(full("http://example.com/creds") == refused);
        CHECK(full("http://127.0.0.1.example.com/creds") == refused);
        CHECK(full("http://10.0.0.1/creds") == refused);
        CHECK(full("ftp://127.0.0.1/creds") == refused);
        const std::string not_url =
            "[ddb2os.credentials.bad_container_uri] AWS_CONTAINER_CREDENTIALS_FULL_URI is not an absolute URL with a host";
        CHECK(full("not a url") == not_url);
        CHECK(full("file:///etc/passwd") == not_url);
        CHECK(error_of([&] {
                  ddb2os::container_credentials(
                      t, ddb2os::environment_from({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/x"},
                                                   {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "a\nb"}}))
                      .lookup();
              }) == "[ddb2os.credentials.bad_token] AWS_CONTAINER_AUTHORIZATION_TOKEN holds a line break");
        CHECK(never.seen.empty());
    }
    SUBCASE("the relative URI goes to 169.254.170.2 by default (checked without a network)") {
        scripted_transport fake([](const http::request&) { return http_answer(200, credentials_json()); });
        std::shared_ptr<http::transport> t(std::shared_ptr<void>(), &fake);
        ddb2os::container_credentials c(t, ddb2os::environment_from({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/x"}}));
        CHECK(c.load().access_key_id() == key_id);
        REQUIRE(fake.seen.size() == 1);
        CHECK(fake.seen[0].target == "http://169.254.170.2/v2/x");
        CHECK(fake.seen[0].headers.size() == 1);  // Accept, and no Authorization without a token
    }
}

TEST_CASE("credentials_http: the container endpoint's hosts, retries and deadline, checked without a network") {
    scripted_transport fake([](const http::request&) { return http_answer(200, credentials_json()); });
    std::shared_ptr<http::transport> t(std::shared_ptr<void>(), &fake);
    const auto full = [&](const std::string& uri) {
        return ddb2os::container_credentials(t, ddb2os::environment_from({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", uri}}));
    };
    // Plain http to EKS Pod Identity's agent (IPv4 and IPv6) and to loopback addresses.
    for (const char* uri : {"http://169.254.170.23/v1/credentials", "http://[fd00:ec2::23]/v1/credentials",
                            "http://[::1]:8080/c", "http://localhost/c", "http://127.1.2.3/c"}) {
        CAPTURE(uri);
        CHECK(full(uri).load().access_key_id() == key_id);
        CHECK(fake.seen.back().target == uri);
    }
    const std::size_t sent = fake.seen.size();
    CHECK(error_of([&] {
              ddb2os::container_credentials(t, ddb2os::environment_from({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "v2/x"}}))
                  .lookup();
          }) == "[ddb2os.credentials.bad_container_uri] AWS_CONTAINER_CREDENTIALS_RELATIVE_URI does not start with '/'");
    CHECK(fake.seen.size() == sent);

    // Any 5xx is retried, 500 too.
    int calls = 0;
    scripted_transport flaky([&](const http::request&) {
        return ++calls == 1 ? http_answer(500, "internal error") : http_answer(200, credentials_json());
    });
    std::shared_ptr<http::transport> f(std::shared_ptr<void>(), &flaky);
    CHECK(ddb2os::container_credentials(f, ddb2os::environment_from({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/c"}}))
              .load()
              .access_key_id() == key_id);
    CHECK(flaky.seen.size() == 2);

    // A deadline already past still gets its one attempt, so that the transport says what happened
    // (not "answered HTTP 0").
    scripted_transport late([](const http::request&) {
        http::result r;
        r.error = http::error_kind::timeout;
        r.message = "the deadline passed before sending";
        return r;
    });
    std::shared_ptr<http::transport> l(std::shared_ptr<void>(), &late);
    ddb2os::container_credentials c(l, ddb2os::environment_from({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/c"}}));
    CHECK(error_of([&] { c.load(http::clock::now() - 1ms); }) ==
          "[ddb2os.credentials.unreachable] container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI) failed: "
          "the deadline passed before sending");
    CHECK(late.seen.size() == 1);
}

TEST_CASE("credentials_http: an endpoint's odd answers, checked without a network") {
    // A Code that is not a short plain word is the server's text: not quoted.
    CHECK(error_of([] { ddb2os::detail::parse_credentials_document(R"({"Code":"Denied: <b>no</b>\n"})", "the endpoint"); }) ==
          "[ddb2os.credentials.bad_response] the endpoint returned Code other than Success");
    // An IMDSv2 token holding a line break is not sent on in a header (a transport other than
    // libcurl's may not refuse it).
    scripted_transport imds([](const http::request& r) { return http_answer(200, r.method == "PUT" ? "tok\r\nX-Injected: 1" : "r1"); });
    std::shared_ptr<http::transport> t(std::shared_ptr<void>(), &imds);
    const ddb2os::credentials_lookup l = ddb2os::imds_credentials(t, ddb2os::environment_from({})).lookup();
    CHECK_FALSE(l.found);
    CHECK(l.tried == "EC2 instance metadata at http://169.254.169.254 (token request returned no usable token)");
    CHECK(imds.seen.size() == 1);
}

TEST_CASE("credentials_http: EC2 instance metadata, IMDSv2") {
    scoped_env env;
    const std::string imds_token = "AQAEAimds-session-token==";
    std::string role_list = "ddb2os-role\n";
    long role_status = 200;
    std::string document = credentials_json();
    http_server imds([&](const received_request& r) {
        if (r.method == "PUT" && r.target == "/latest/api/token") {
            if (r.header("x-aws-ec2-metadata-token-ttl-seconds") != "21600") return respond(400, "ttl");
            return respond(200, imds_token);
        }
        if (r.header("x-aws-ec2-metadata-token") != imds_token) return respond(401, "token");
        if (r.method == "GET" && r.target == "/latest/meta-data/iam/security-credentials/")
            return respond(static_cast<int>(role_status), role_list);
        if (r.method == "GET" && r.target == "/latest/meta-data/iam/security-credentials/ddb2os-role")
            return respond(200, document);
        return respond(404, "not found");
    });
    const auto metadata = std::shared_ptr<http::transport>(ddb2os::make_metadata_transport());
    const auto provider = [&](std::map<std::string, std::string> extra = {}) {
        extra.emplace("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url() + "/");
        return ddb2os::imds_credentials(metadata, ddb2os::environment_from(extra));
    };

    SUBCASE("token, role, credentials") {
        auto p = provider();
        CHECK(p.endpoint() == imds.url());
        const credentials got = p.load();
        CHECK(got.access_key_id() == key_id);
        CHECK(got.session_token() == token);
        CHECK(got.expiration() == ddb2os::detail::parse_iso8601("2030-01-01T00:00:00Z"));
        const auto reqs = imds.requests();
        REQUIRE(reqs.size() == 3);
        CHECK(reqs[0].method == "PUT");
        CHECK(reqs[1].target == "/latest/meta-data/iam/security-credentials/");
        CHECK(reqs[2].target == "/latest/meta-data/iam/security-credentials/ddb2os-role");
        CHECK(imds.connections() == 1);  // the metadata transport keeps its connection too
    }
    SUBCASE("no role attached: not found, with the reason") {
        role_status = 404;
        const ddb2os::credentials_lookup l = provider().lookup();
        CHECK_FALSE(l.found);
        CHECK(l.tried == "EC2 instance metadata at " + imds.url() + " (no IAM role attached to the instance)");
    }
    SUBCASE("unreachable: not found, with the reason") {
        refusing_port nobody;
        ddb2os::imds_credentials p(metadata,
                                   ddb2os::environment_from({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", nobody.url()}}));
        const ddb2os::credentials_lookup l = p.lookup();
        CHECK_FALSE(l.found);
        CHECK(l.tried.rfind("EC2 instance metadata at " + nobody.url() + " (token request failed: PUT " + nobody.url() +
                                "/latest/api/token: " + refused,
                            0) == 0);
    }
    SUBCASE("a role whose credentials are bad is an error") {
        document = R"({"Code":"AssumeRoleUnauthorizedAccess","Message":"x"})";
        CHECK(error_of([&] { provider().lookup(); }) ==
              "[ddb2os.credentials.bad_response] EC2 instance metadata at " + imds.url() +
                  " for role \"ddb2os-role\" returned Code \"AssumeRoleUnauthorizedAccess\"");
        document = std::string(R"({"Code":"Success","AccessKeyId":"A","SecretAccessKey":")") + secret +
                   R"(","Expiration":"tomorrow"})";
        const std::string e = error_of([&] { provider().lookup(); });
        CHECK(e == "[ddb2os.credentials.bad_response] EC2 instance metadata at " + imds.url() +
                       " for role \"ddb2os-role\" returned an Expiration that is not an ISO-8601 time");
        role_list = "../../secret\n";
        CHECK(error_of([&] { provider().lookup(); }) ==
              "[ddb2os.credentials.bad_response] EC2 instance metadata at " + imds.url() +
                  " returned a role name that is not an IAM name");
    }
    SUBCASE("disabled, and the default endpoints (checked without a network)") {
        scripted_transport fake([&](const http::request& r) {
            if (r.method == "PUT") return http_answer(200, imds_token);
            if (r.target.back() == '/') return http_answer(200, "r1");
            return http_answer(200, credentials_json());
        });
        std::shared_ptr<http::transport> t(std::shared_ptr<void>(), &fake);
        for (const char* off : {"true", "TRUE"}) {
            const ddb2os::credentials_lookup l =
                ddb2os::imds_credentials(t, ddb2os::environment_from({{"AWS_EC2_METADATA_DISABLED", off}})).lookup();
            CHECK_FALSE(l.found);
            CHECK(l.tried == "EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)");
        }
        CHECK(fake.seen.empty());
        CHECK(ddb2os::imds_credentials(t, ddb2os::environment_from({})).load().access_key_id() == key_id);
        REQUIRE(fake.seen.size() == 3);
        CHECK(fake.seen[0].method == "PUT");
        CHECK(fake.seen[0].target == "http://169.254.169.254/latest/api/token");
        CHECK(fake.seen[2].target == "http://169.254.169.254/latest/meta-data/iam/security-credentials/r1");
        CHECK(fake.seen[2].headers.at(0).name == "X-aws-ec2-metadata-token");
        CHECK(fake.seen[2].headers.at(0).value == imds_token);
        ddb2os::imds_credentials v6(t, ddb2os::environment_from({{"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6"}}));
        CHECK(v6.endpoint() == "http://[fd00:ec2::254]");
        CHECK(error_of([&] {
                  ddb2os::imds_credentials(t, ddb2os::environment_from({{"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "v7"}}))
                      .lookup();
              }) == "[ddb2os.credentials.bad_imds_mode] AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE is neither IPv4 nor IPv6");
    }
}

TEST_CASE("credentials_http: refreshing_credentials refreshes before expiry") {
    using std::chrono::system_clock;
    const system_clock::time_point t0 = system_clock::time_point(std::chrono::seconds(1'700'000'000));
    std::atomic<std::int64_t> now_s{0};  // seconds after t0
    const auto clock = [&] { return t0 + std::chrono::seconds(now_s.load()); };

    // A source handing out credentials valid for an hour from "now", numbered; or failing.
    struct source final : ddb2os::credentials_provider {
        std::function<system_clock::time_point()> clock;
        std::atomic<int> calls{0};
        std::atomic<bool> fail{false};
        ddb2os::credentials_lookup lookup() override {
            const int n = ++calls;
            std::this_thread::sleep_for(5ms);
            if (fail) throw ddb2os::error("credentials.unreachable", "source down");
            return {credentials("AKID" + std::to_string(n), secret, token, clock() + std::chrono::hours(1)), {}};
        }
    };
    auto src = std::make_shared<source>();
    src->clock = clock;
    ddb2os::refreshing_credentials cache(src, std::chrono::minutes(5), clock);

    CHECK(cache.load().access_key_id() == "AKID1");
    now_s = 54 * 60;
    CHECK(cache.load().access_key_id() == "AKID1");
    CHECK(src->calls == 1);
    now_s = 55 * 60 + 1;  // inside the 5 minutes before expiry
    CHECK(cache.load().access_key_id() == "AKID2");
    CHECK(cache.load().access_key_id() == "AKID2");
    CHECK(src->calls == 2);
    CHECK(cache.refreshes() == 2);

    // The source fails inside the window: the cached ones serve while they work, and the source
    // is asked again only after the retry interval.
    src->fail = true;
    now_s += 56 * 60;  // AKID2 expires at 55:01 + 60:00
    CHECK(cache.load().access_key_id() == "AKID2");
    CHECK(src->calls == 3);
    now_s += 10;
    CHECK(cache.load().access_key_id() == "AKID2");
    CHECK(src->calls == 3);
    now_s += 30;
    CHECK(cache.load().access_key_id() == "AKID2");
    CHECK(src->calls == 4);
    now_s += 5 * 60;  // expired: the failure shows
    CHECK(error_of([&] { cache.load(); }) == "[ddb2os.credentials.unreachable] source down");
    // ... and the source is asked again at the next lookup: a passing fault (one metadata timeout) must
    // not fail every request until the retry interval (the engine tries a request three times).
    const int asked = src->calls;
    CHECK(error_of([&] { cache.load(); }) == "[ddb2os.credentials.unreachable] source down");
    CHECK(src->calls == asked + 1);

    // Many threads, one refresh.
    src->fail = false;
    const int before = src->calls;
    std::vector<std::thread> threads;
    std::atomic<int> same{0};
    for (int i = 0; i < 8; ++i)
        threads.emplace_back([&] { same += cache.load().access_key_id() == "AKID" + std::to_string(before + 1) ? 1 : 0; });
    for (auto& th : threads) th.join();
    CHECK(same == 8);
    CHECK(src->calls == before + 1);

    cache.invalidate();
    CHECK(cache.load().access_key_id() == "AKID" + std::to_string(before + 2));

    // Static credentials are kept for good; nothing found is not cached.
    auto fixed = std::make_shared<fixed_credentials>(credentials(key_id, secret));
    ddb2os::refreshing_credentials forever(fixed, std::chrono::minutes(5), clock);
    forever.load();
    now_s += 365 * 24 * 3600;
    forever.load();
    CHECK(fixed->calls == 1);
    auto empty = std::make_shared<fixed_credentials>();
    ddb2os::refreshing_credentials nothing(empty, std::chrono::minutes(5), clock);
    CHECK_FALSE(nothing.lookup().found);
    CHECK_FALSE(nothing.lookup().found);
    CHECK(empty->calls == 2);

    // Credentials already past their Expiration when fetched (a clock ahead, a stale endpoint): refused
    // as botocore refuses them, and the source asked again only after the retry interval (before, every
    // lookup asked it and handed the expired ones out).
    struct stale final : ddb2os::credentials_provider {
        std::function<system_clock::time_point()> clock;
        int calls = 0;
        ddb2os::credentials_lookup lookup() override {
            ++calls;
            return {credentials(key_id, secret, token, clock() - std::chrono::seconds(1)), {}};
        }
    };
    auto old = std::make_shared<stale>();
    old->clock = clock;
    ddb2os::refreshing_credentials cache2(old, std::chrono::minutes(5), clock);
    now_s = 0;
    const std::string expired =
        "[ddb2os.credentials.expired] the credentials found expired at 2023-11-14T22:13:19Z, before they were fetched "
        "(this machine's clock says 2023-11-14T22:13:20Z): asked again after 30 s";
    for (int i = 0; i < 100; ++i) CHECK(error_of([&] { cache2.load(); }) == expired);
    CHECK(old->calls == 1);
    now_s = 30;
    CHECK(error_of([&] { cache2.load(); }).find("[ddb2os.credentials.expired]") == 0);
    CHECK(old->calls == 2);
    CHECK(error_of([&] { cache2.load(); }).find(secret) == std::string::npos);
}

TEST_CASE("credentials_http: refreshing_credentials keeps working credentials while a refresh is slow or stale") {
    using std::chrono::system_clock;
    const system_clock::time_point t0 = system_clock::time_point(std::chrono::seconds(1'700'000'000));
    std::atomic<std::int64_t> now_s{0};
    const auto clock = [&] { return t0 + std::chrono::seconds(now_s.load()); };
    // First call: AKID1 for an hour. Later calls wait for `go`, then hand out `next`: fresh (AKID2, an
    // hour) or stale (AKID0, expired a second before).
    struct source final : ddb2os::credentials_provider {
        std::function<system_clock::time_point()> clock;
        std::mutex m;
        std::condition_variable cv;
        bool go = true, inside = false, stale_next = false;
        int calls = 0;
        ddb2os::credentials_lookup lookup() override {
            std::unique_lock<std::mutex> lock(m);
            const int n = ++calls;
            inside = true;
            cv.notify_all();
            cv.wait(lock, [&] { return go; });
            inside = false;
            if (n == 1) return {credentials("AKID1", secret, token, clock() + std::chrono::hours(1)), {}};
            if (stale_next) return {credentials("AKID0", secret, token, clock() - std::chrono::seconds(1)), {}};
            return {credentials("AKID2", secret, token, clock() + std::chrono::hours(1)), {}};
        }
    };
    auto src = std::make_shared<source>();
    src->clock = clock;
    ddb2os::refreshing_credentials cache(src, std::chrono::minutes(5), clock);
    CHECK(cache.load().access_key_id() == "AKID1");

    // Inside the refresh window, one thread's fetch hangs: the others sign with AKID1 meanwhile (they
    // waited for the fetch, and failed at their deadline, while AKID1 worked).
    now_s = 56 * 60;
    {
        const std::lock_guard<std::mutex> lock(src->m);
        src->go = false;
    }
    std::thread refresher([&] { CHECK(cache.load().access_key_id() == "AKID2"); });
    {
        std::unique_lock<std::mutex> lock(src->m);
        src->cv.wait(lock, [&] { return src->inside; });
    }
    for (int i = 0; i < 3; ++i) CHECK(cache.load(http::clock::now() + std::chrono::milliseconds(50)).access_key_id() == "AKID1");
    {
        const std::lock_guard<std::mutex> lock(src->m);
        src->go = true;
    }
    src->cv.notify_all();
    refresher.join();
    CHECK(cache.load().access_key_id() == "AKID2");
    CHECK(src->calls == 2);

    // In their last minute they are not handed out while a refresh is under way (a request signed with
    // them could expire on its way): the others wait for the fetch, until their own deadline.
    now_s = (56 + 60) * 60 - 30;  // AKID2 expires at 116:00
    {
        const std::lock_guard<std::mutex> lock(src->m);
        src->go = false;
    }
    std::thread late([&] { CHECK(cache.load().access_key_id() == "AKID2"); });
    {
        std::unique_lock<std::mutex> lock(src->m);
        src->cv.wait(lock, [&] { return src->inside; });
    }
    CHECK(error_of([&] { cache.load(http::clock::now() + std::chrono::milliseconds(50)); }) ==
          "[ddb2os.credentials.unreachable] the deadline passed while another thread was fetching the credentials");
    {
        const std::lock_guard<std::mutex> lock(src->m);
        src->go = true;
    }
    src->cv.notify_all();
    late.join();
    CHECK(src->calls == 3);

    // A refresh that brings credentials already expired (a stale endpoint) keeps the working ones
    // until they expire, then says why (it threw credentials.expired while AKID2 still worked).
    src->stale_next = true;
    now_s += 56 * 60;  // inside the window of the AKID2 fetched last
    CHECK(cache.load().access_key_id() == "AKID2");
    CHECK(src->calls == 4);
    now_s += 10;
    CHECK(cache.load().access_key_id() == "AKID2");
    CHECK(src->calls == 4);  // asked again only after the retry interval
    now_s += 5 * 60;         // AKID2 has expired: the stale answer is the error
    CHECK(error_of([&] { cache.load(); }).find("[ddb2os.credentials.expired] the credentials found expired at ") == 0);
}

TEST_CASE("credentials_http: the default chain, end to end through a SigV4 transport") {
    scoped_env env;
    temp_dir home;
    http_server container([](const received_request& r) {
        if (r.header("authorization") != "ecs-token") return respond(401, "no");
        return respond(200, credentials_json());
    });
    const auto metadata = std::shared_ptr<http::transport>(ddb2os::make_metadata_transport());

    SUBCASE("order, and what was tried") {
        scripted_transport never([](const http::request&) -> http::result {
            FAIL("no request expected");
            return {};
        });
        std::shared_ptr<http::transport> t(std::shared_ptr<void>(), &never);
        ddb2os::credentials_chain chain = ddb2os::default_credentials_chain(
            t, ddb2os::environment_from({{"HOME", home.dir.string()}, {"AWS_EC2_METADATA_DISABLED", "true"}}));
        CHECK(chain.size() == 4);
        const std::string aws = home.dir.string() + "/.aws/";
        CHECK(error_of([&] { chain.load(); }) ==
              "[ddb2os.credentials.missing] no AWS credentials found; tried: environment variables AWS_ACCESS_KEY_ID "
              "and AWS_SECRET_ACCESS_KEY (not set); profile \"default\" in shared credentials file \"" + aws +
                  "credentials\" (no such file); profile \"default\" in config file \"" + aws +
                  "config\" (no such file); container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and "
                  "AWS_CONTAINER_CREDENTIALS_FULL_URI not set); EC2 instance metadata (disabled by "
                  "AWS_EC2_METADATA_DISABLED)");
        // The environment comes first, before the container.
        ddb2os::credentials_chain env_first = ddb2os::default_credentials_chain(
            t, ddb2os::environment_from({{"HOME", home.dir.string()},
                                         {"AWS_ACCESS_KEY_ID", "AKIDENV"},
                                         {"AWS_SECRET_ACCESS_KEY", secret},
                                         {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/never"}}));
        CHECK(env_first.load().access_key_id() == "AKIDENV");
        CHECK(never.seen.empty());
    }
    SUBCASE("container credentials sign requests") {
        const ddb2os::environment e = ddb2os::environment_from({{"HOME", home.dir.string()},
                                                                {"AWS_CONTAINER_CREDENTIALS_FULL_URI", container.url() + "/c"},
                                                                {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-token"},
                                                                {"AWS_EC2_METADATA_DISABLED", "true"}});
        const std::shared_ptr<ddb2os::credentials_provider> provider = ddb2os::default_credentials_provider(metadata, e);
        const credentials expected(key_id, secret, token);
        http_server opensearch([&](const received_request& r) {
            const bool valid = r.header("authorization") == expected_authorization(r, expected, "eu-west-1", "es") &&
                               r.header("x-amz-security-token") == token;
            return respond(valid ? 200 : 403, valid ? "signature ok" : "signature mismatch");
        });
        ddb2os::curl_transport t(opensearch.url(), sigv4_options(provider));
        for (int i = 0; i < 3; ++i) {
            const http::result r = t.send({"POST", "/_bulk", {{"Content-Type", "application/x-ndjson"}}, "{}\n"}, in(5s));
            REQUIRE(r);
            CHECK(r.res.body == "signature ok");
        }
        CHECK(container.requests().size() == 1);  // cached until near its Expiration (2030)
        CHECK(opensearch.connections() == 1);
    }
}
