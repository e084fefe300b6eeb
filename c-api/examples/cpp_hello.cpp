// C++17 use of the sans-IO C API: one in-memory exchange, no sockets.
// Exits 0 when the response bytes are the expected ones.
#include "cormorant.h"

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

namespace {

struct ConnDeleter {
    void operator()(cormorant_conn* c) const noexcept { cormorant_conn_free(c); }
};
using Conn = std::unique_ptr<cormorant_conn, ConnDeleter>;

std::string_view view(cormorant_str s) {
    return {reinterpret_cast<const char*>(s.ptr), s.len};
}

bool check(cormorant_result r, const char* what) {
    if (r != CORMORANT_RESULT_OK) {
        std::fprintf(stderr, "%s: %s\n", what, cormorant_strerror(r));
        return false;
    }
    return true;
}

}  // namespace

int main() {
    cormorant_config config = cormorant_config_default();
    cormorant_conn* raw = nullptr;
    if (!check(cormorant_conn_new(&config, 0, &raw), "new")) return 1;
    Conn conn(raw);

    const std::string request = "GET /hello HTTP/1.1\r\nhost: example\r\n\r\n";
    if (!check(cormorant_conn_feed(conn.get(), reinterpret_cast<const uint8_t*>(request.data()),
                                   request.size()),
               "feed"))
        return 1;

    cormorant_event ev{};
    if (!check(cormorant_conn_poll(conn.get(), &ev), "poll")) return 1;
    if (ev.kind != CORMORANT_EVENT_KIND_REQUEST_HEAD || view(ev.method) != "GET" ||
        view(ev.target) != "/hello" || ev.headers_len != 1 || view(ev.headers[0].name) != "host") {
        std::fprintf(stderr, "unexpected request head\n");
        return 1;
    }

    const std::string_view length = "5";
    const cormorant_header headers[] = {
        {{reinterpret_cast<const uint8_t*>("content-length"), 14},
         {reinterpret_cast<const uint8_t*>(length.data()), length.size()}},
    };
    if (!check(cormorant_conn_respond(conn.get(), 200, headers, 1), "respond") ||
        !check(cormorant_conn_send_body(conn.get(), reinterpret_cast<const uint8_t*>("hello"), 5),
               "send_body") ||
        !check(cormorant_conn_end(conn.get()), "end"))
        return 1;

    const uint8_t* out = nullptr;
    size_t len = 0;
    if (!check(cormorant_conn_take_output(conn.get(), &out, &len), "take_output")) return 1;
    const std::string response(reinterpret_cast<const char*>(out), len);
    if (!check(cormorant_conn_consume(conn.get(), len), "consume")) return 1;

    const std::string expected =
        "HTTP/1.1 200 OK\r\nserver: cormorant\r\ncontent-length: 5\r\n\r\nhello";
    if (response != expected) {
        std::fprintf(stderr, "unexpected response:\n%s\n", response.c_str());
        return 1;
    }
    if (cormorant_conn_wants_close(conn.get()) || !check(cormorant_conn_next(conn.get()), "next"))
        return 1;
    std::puts("ok");
    return 0;
}
