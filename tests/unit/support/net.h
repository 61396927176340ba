/* net.h - blocking TCP sockets on 127.0.0.1 for the unit tests: a
 * listener, a client with I/O timeouts, whole sends and reads, an echo.
 *
 * Functions marked "test thread only" fail the test (cmocka) on error; the
 * others never assert, so the tests' server threads use them too. */
#ifndef TESTS_UNIT_SUPPORT_NET_H
#define TESTS_UNIT_SUPPORT_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

/* Send and receive timeout of every test socket, so a hang fails. */
#define TU_IO_TIMEOUT_S 15

/* An IPv4 or IPv6 address in text form as a sockaddr (port 0). Test
 * thread only. */
struct sockaddr_storage tu_sockaddr(const char *ip);

/* A listener on 127.0.0.1, on a port the kernel picks (stored in *port).
 * Test thread only. */
int tu_listen_loopback(uint16_t *port);

/* A connection to 127.0.0.1:port with TU_IO_TIMEOUT_S timeouts. Test
 * thread only. */
int tu_dial_loopback(uint16_t port);

/* SO_RCVTIMEO and SO_SNDTIMEO of seconds; 0, or -1 if either failed. */
int tu_set_timeouts(int fd, int seconds);

/* Sends all n bytes (MSG_NOSIGNAL); false on an error or a closed peer. */
bool tu_send_all(int fd, const void *p, size_t n);

/* Reads until n bytes, EOF, an error or a timeout; returns the count. */
size_t tu_read_exact(int fd, char *buf, size_t n);

/* Sends back everything read until EOF or an error, then shuts down the
 * write side. */
void tu_echo_until_eof(int fd);

/* Reads until EOF, an error or a timeout; a NUL-terminated malloc'd buffer
 * (its length in *out_len unless NULL). Test thread only. */
char *tu_read_all(int fd, size_t *out_len);

/* Dials port, sends req, returns tu_read_all's answer (until the peer
 * closes). Test thread only. */
char *tu_exchange(uint16_t port, const char *req, size_t req_len);
char *tu_exchange_str(uint16_t port, const char *req);

/* For live network tests: moves the whole test process into a network
 * namespace of its own (never the machine's). Returns 1 on success; 0, after
 * printing "SKIP <who>: why", when not root or unshare fails. */
int tu_enter_own_netns(const char *who);

#endif
