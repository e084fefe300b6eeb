/* epoll server on the sans-IO C API: GET /hello, POST /echo, WebSocket echo, and the library's timers.
 * Usage: epoll_server PORT (0 picks one; the port is printed). SIGTERM stops. */
#define _DEFAULT_SOURCE
#include "cormorant.h"
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
enum { MAX_FD = 1024, GET_HELLO = 1, POST_ECHO = 2, DENIED = 3 };
struct client { cormorant_conn *conn; char *body; size_t len; int route; };
static struct client clients[MAX_FD];
static volatile sig_atomic_t stop; static void on_term(int sig) { (void)sig; stop = 1; }

static uint64_t now_ns(void) { /* the library has no clock: time is ours to pass in */
  struct timespec t; return clock_gettime(CLOCK_MONOTONIC, &t), (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec; }
static int is(cormorant_str s, const char *l) { return s.len == strlen(l) && !memcmp(s.ptr, l, s.len); }
static void respond(cormorant_conn *c, uint16_t status, const char *body, size_t len) {
  char n[24]; snprintf(n, sizeof n, "%zu", len);
  cormorant_header h[] = {{{(const uint8_t *)"content-length", 14}, {(const uint8_t *)n, strlen(n)}}};
  cormorant_conn_respond(c, status, h, 1), cormorant_conn_send_body(c, (const uint8_t *)body, len), cormorant_conn_end(c);
}
static int pump(int fd, struct client *cl) { /* handles every event, writes the output; 0: keep open */
  for (int more = 1; more;) {
    cormorant_event ev;
    if (cormorant_conn_poll(cl->conn, &ev) != CORMORANT_RESULT_OK) return -1;
    switch (ev.kind) {
    case CORMORANT_EVENT_KIND_REQUEST_HEAD:
      cl->len = 0;
      cl->route = is(ev.method, "GET") && is(ev.target, "/hello") ? GET_HELLO
                : is(ev.method, "POST") && is(ev.target, "/echo") ? POST_ECHO : 0;
      if (ev.websocket_upgrade && cormorant_conn_ws_accept(cl->conn, NULL) != CORMORANT_RESULT_OK)
        cormorant_conn_ws_deny(cl->conn, 400), cl->route = DENIED;
      break;
    case CORMORANT_EVENT_KIND_BODY: /* copied: the view is valid until the next call */
      cl->body = realloc(cl->body, cl->len + ev.data.len), memcpy(cl->body + cl->len, ev.data.ptr, ev.data.len);
      cl->len += ev.data.len; break;
    case CORMORANT_EVENT_KIND_END_OF_MESSAGE:
      if (cl->route == GET_HELLO) respond(cl->conn, 200, "hello", 5);
      else if (cl->route == POST_ECHO) respond(cl->conn, 200, cl->body, cl->len);
      else if (cl->route != DENIED) respond(cl->conn, 404, "not found", 9);
      break;
    case CORMORANT_EVENT_KIND_PAUSED: more = cormorant_conn_next(cl->conn) == CORMORANT_RESULT_OK; break;
    case CORMORANT_EVENT_KIND_WS_MESSAGE: cormorant_conn_ws_send(cl->conn, ev.is_text, ev.data.ptr, ev.data.len); break;
    case CORMORANT_EVENT_KIND_WS_PING: case CORMORANT_EVENT_KIND_WS_PONG: break; /* pong queued */
    default: more = 0; /* NEED_DATA, WS_CLOSE (reply queued), PROTOCOL_ERROR, CLOSED */
    }
  }
  const uint8_t *out; size_t len;
  while (cormorant_conn_take_output(cl->conn, &out, &len) == CORMORANT_RESULT_OK && len > 0) {
    ssize_t w = write(fd, out, len); /* blocking socket: short writes only */
    if (w <= 0 || cormorant_conn_consume(cl->conn, (size_t)w) != CORMORANT_RESULT_OK) return -1;
  }
  return cormorant_conn_wants_close(cl->conn) ? -1 : 0;
}
static int drive(int fd, struct client *cl) { /* feeds what was read, then pumps */
  uint8_t buf[16384]; ssize_t n = read(fd, buf, sizeof buf); cormorant_conn_set_time(cl->conn, now_ns());
  return (n > 0 ? cormorant_conn_feed(cl->conn, buf, (size_t)n) : cormorant_conn_feed_eof(cl->conn)), pump(fd, cl);
}
static void drop(int fd) { cormorant_conn_free(clients[fd].conn), free(clients[fd].body), close(fd), clients[fd] = (struct client){0}; }
static int run_timers(void) { /* fires due timers; returns the epoll_wait timeout (ms) to the next one */
  uint64_t now = now_ns(), next = UINT64_MAX, d;
  for (int fd = 0; fd < MAX_FD; fd++) {
    if (!clients[fd].conn || cormorant_conn_timeout(clients[fd].conn, &d)) continue;
    if (d > now) { next = d < next ? d : next; continue; }
    cormorant_conn_handle_timeout(clients[fd].conn, now); /* then events and output, as after a read */
    if (pump(fd, &clients[fd])) drop(fd); else next = now; /* ask for its next deadline at once */
  }
  return next == UINT64_MAX ? -1 : (int)((next - now + 999999) / 1000000u);
}
int main(int argc, char **argv) {
  struct sigaction sa = {.sa_handler = on_term};
  sigaction(SIGTERM, &sa, NULL), sigaction(SIGINT, &sa, NULL), signal(SIGPIPE, SIG_IGN);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(argc > 1 ? atoi(argv[1]) : 8080)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); socklen_t alen = sizeof addr;
  int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0), ep = epoll_create1(0);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 128)) return perror("listen"), 1;
  getsockname(lfd, (struct sockaddr *)&addr, &alen);
  printf("%d\n", ntohs(addr.sin_port)), fflush(stdout);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, ready[64];
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  while (!stop) {
    int n = epoll_wait(ep, ready, 64, run_timers());
    for (int i = 0; i < n; i++) {
      int fd = ready[i].data.fd;
      if (fd == lfd) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0 || c >= MAX_FD || cormorant_conn_new(NULL, now_ns(), &clients[c].conn)) { close(c); continue; }
        ev.data.fd = c, epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
      } else if (drive(fd, &clients[fd])) drop(fd);
    }
  }
  for (int fd = 0; fd < MAX_FD; fd++) if (clients[fd].conn) drop(fd);
  return close(ep), close(lfd), 0;
}
