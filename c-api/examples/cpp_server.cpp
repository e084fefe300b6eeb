// C++17 server on the server layer: RAII handles, a lambda as the request
// handler, std::thread for WebSocket sessions.
//   GET /hello          "hello from C++"
//   GET /headers        the request's header names, one per line
//   WebSocket           echo, each message prefixed with "echo: "
// Usage: cpp_server PORT (0 picks a port; it is printed). SIGTERM stops it.
#include "cormorant.h"

#include <csignal>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <pthread.h>

namespace {

std::string_view view(cormorant_str s) {
    return {reinterpret_cast<const char*>(s.ptr), s.len};
}

cormorant_str str(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct RequestFree {
    void operator()(cormorant_request* r) const noexcept { cormorant_request_free(r); }
};
struct WebSocketFree {
    void operator()(cormorant_websocket* w) const noexcept { cormorant_websocket_free(w); }
};
using Request = std::unique_ptr<cormorant_request, RequestFree>;
using WebSocket = std::unique_ptr<cormorant_websocket, WebSocketFree>;

// A server that calls `handler` for each request; stopped by its destructor.
class Server {
public:
    using Handler = std::function<void(Request)>;

    Server(const std::string& config, Handler handler) : handler_(std::move(handler)) {
        cormorant_server_callbacks cb{};
        cb.on_request = [](void* self, cormorant_request* r) {
            static_cast<Server*>(self)->handler_(Request(r));
        };
        cb.on_websocket = [](void*, cormorant_websocket* w) {
            std::thread(session, WebSocket(w)).detach();
        };
        cb.user_data = this;
        char error[256] = "";
        if (cormorant_server_start(config.c_str(), &cb, &server_, error, sizeof error) !=
            CORMORANT_RESULT_OK) {
            std::fprintf(stderr, "cpp_server: %s\n", error);
            server_ = nullptr;
        }
    }
    ~Server() { cormorant_server_stop(server_, 2000); }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    explicit operator bool() const { return server_ != nullptr; }
    uint16_t port() const { return cormorant_server_port(server_); }

private:
    static void session(WebSocket ws) {
        if (cormorant_websocket_accept(ws.get(), nullptr) != CORMORANT_RESULT_OK) return;
        cormorant_ws_message m{};
        while (cormorant_websocket_receive(ws.get(), &m) == CORMORANT_RESULT_OK &&
               m.kind != CORMORANT_WS_KIND_CLOSED) {
            std::string reply = "echo: ";
            reply += view(m.data);
            cormorant_websocket_send(ws.get(), m.kind == CORMORANT_WS_KIND_TEXT,
                                     reinterpret_cast<const uint8_t*>(reply.data()), reply.size());
        }
    }

    Handler handler_;
    cormorant_server* server_ = nullptr;
};

void reply(const Request& req, uint16_t status, std::string_view body) {
    const std::string length = std::to_string(body.size());
    const cormorant_header headers[] = {{str("content-length"), str(length)}};
    cormorant_request_respond(req.get(), status, headers, 1);
    cormorant_request_write(req.get(), reinterpret_cast<const uint8_t*>(body.data()), body.size(),
                            false);
}

}  // namespace

int main(int argc, char** argv) {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);

    const int port = argc > 1 ? std::stoi(argv[1]) : 8000;
    Server server("{\"host\": \"127.0.0.1\", \"port\": " + std::to_string(port) + "}",
                  [](Request req) {
                      cormorant_request_info info{};
                      cormorant_request_get_info(req.get(), &info);
                      if (view(info.path) == "/hello") {
                          reply(req, 200, "hello from C++");
                      } else if (view(info.path) == "/headers") {
                          std::string names;
                          for (size_t i = 0; i < info.headers_len; ++i)
                              (names += view(info.headers[i].name)) += '\n';
                          reply(req, 200, names);
                      } else {
                          reply(req, 404, "not found");
                      }
                  });
    if (!server) return 1;
    std::printf("%u\n", static_cast<unsigned>(server.port()));
    std::fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    return 0;
}
