/* Callback server on the server layer: the native server (HTTP/1.1, HTTP/2,
 * TLS, WebSocket) calls C functions; no event loop of our own.
 *   GET /hello   "hello", answered on the dispatcher thread
 *   POST /echo   the request body, read and answered on a thread of ours
 *   GET /stream  three chunks, streamed
 *   WebSocket    echo, on a thread of ours
 * Usage: callback_server [-i] PORT [CERT KEY]  (0 picks a port; it is
 * printed). -i runs the callbacks inline on the I/O thread (they never
 * block: bodies and WebSockets go to threads of ours either way).
 * SIGTERM or SIGINT stops it gracefully. */
#define _POSIX_C_SOURCE 200809L
#include "cormorant.h"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is(cormorant_str s, const char *lit) {
  return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static void reply(cormorant_request *req, uint16_t status, const void *body, size_t len) {
  char n[24];
  snprintf(n, sizeof n, "%zu", len);
  cormorant_header h[] = {
      {{(const uint8_t *)"content-type", 12}, {(const uint8_t *)"text/plain", 10}},
      {{(const uint8_t *)"content-length", 14}, {(const uint8_t *)n, strlen(n)}},
  };
  cormorant_request_respond(req, status, h, 2);
  cormorant_request_write(req, body, len, false);
}

/* POST /echo: blocking reads are fine here, off the dispatcher thread. */
static void *echo_thread(void *arg) {
  cormorant_request *req = arg;
  size_t cap = 1 << 16, len = 0, n = 0;
  uint8_t *body = malloc(cap);
  while (body && cormorant_request_read(req, body + len, cap - len, &n) == CORMORANT_RESULT_OK && n > 0) {
    len += n;
    if (len == cap) {
      uint8_t *bigger = realloc(body, cap *= 2);
      if (!bigger) break;
      body = bigger;
    }
  }
  if (body) reply(req, 200, body, len);
  free(body);
  cormorant_request_free(req); /* no response sent: the library answers 500 */
  return NULL;
}

static void *ws_thread(void *arg) {
  cormorant_websocket *ws = arg;
  cormorant_ws_message m;
  if (cormorant_websocket_accept(ws, NULL) == CORMORANT_RESULT_OK)
    while (cormorant_websocket_receive(ws, &m) == CORMORANT_RESULT_OK && m.kind != CORMORANT_WS_KIND_CLOSED)
      cormorant_websocket_send(ws, m.kind == CORMORANT_WS_KIND_TEXT, m.data.ptr, m.data.len);
  cormorant_websocket_free(ws);
  return NULL;
}

static void spawn(void *(*fn)(void *), void *arg) {
  pthread_t t;
  if (pthread_create(&t, NULL, fn, arg) == 0) pthread_detach(t);
  else fn(arg); /* no thread: serve it here */
}

static void on_request(void *user_data, cormorant_request *req) {
  (void)user_data;
  cormorant_request_info info;
  cormorant_request_get_info(req, &info);
  if (is(info.method, "GET") && is(info.path, "/hello")) {
    reply(req, 200, "hello", 5);
  } else if (is(info.method, "POST") && is(info.path, "/echo")) {
    spawn(echo_thread, req);
    return;
  } else if (is(info.method, "GET") && is(info.path, "/stream")) {
    cormorant_request_respond(req, 200, NULL, 0);
    for (int i = 0; i < 3; i++) cormorant_request_write(req, (const uint8_t *)"chunk\n", 6, true);
    cormorant_request_write(req, NULL, 0, false);
  } else {
    reply(req, 404, "not found", 9);
  }
  cormorant_request_free(req);
}

static void on_websocket(void *user_data, cormorant_websocket *ws) {
  (void)user_data;
  spawn(ws_thread, ws);
}

int main(int argc, char **argv) {
  char config[1024], error[256];
  int inline_callbacks = argc > 1 && strcmp(argv[1], "-i") == 0;
  if (inline_callbacks) argv++, argc--;
  if (argc > 2)
    snprintf(config, sizeof config,
             "{\"host\": \"127.0.0.1\", \"port\": %d, \"ssl_certfile\": \"%s\", \"ssl_keyfile\": \"%s\"}",
             argc > 1 ? atoi(argv[1]) : 8000, argv[2], argc > 3 ? argv[3] : "");
  else
    snprintf(config, sizeof config, "{\"host\": \"127.0.0.1\", \"port\": %d}", argc > 1 ? atoi(argv[1]) : 8000);

  /* Block the stop signals in every thread; main waits for them. */
  sigset_t stop;
  sigemptyset(&stop), sigaddset(&stop, SIGTERM), sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);

  cormorant_server_callbacks cb = {
      .on_request = on_request, .on_websocket = on_websocket, .on_io_thread = inline_callbacks};
  cormorant_server *server = NULL;
  if (cormorant_server_start(config, &cb, &server, error, sizeof error) != CORMORANT_RESULT_OK) {
    fprintf(stderr, "callback_server: %s\n", error);
    return 1;
  }
  printf("%u\n", cormorant_server_port(server));
  fflush(stdout);
  int sig;
  sigwait(&stop, &sig);
  cormorant_server_stop(server, 2000);
  return 0;
}
