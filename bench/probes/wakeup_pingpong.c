/* wakeup_pingpong.c - what one cross-process wake-up costs on this machine:
 * two processes bounce a byte over a socketpair, the child waiting in
 * epoll_wait like the proxy's loop. Half a round trip is one wake-up plus a
 * read and a write.
 *
 *   cc -O2 -o /tmp/pingpong bench/probes/wakeup_pingpong.c && /tmp/pingpong
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { ROUNDS = 20000 };

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void echo_loop(int fd)
{
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		_exit(1);
	char c;
	for (int i = 0; i < ROUNDS; i++) {
		struct epoll_event out;
		if (epoll_wait(ep, &out, 1, -1) != 1 || read(fd, &c, 1) != 1 || write(fd, &c, 1) != 1)
			_exit(1);
	}
	_exit(0);
}

int main(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
		perror("socketpair");
		return 1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0)
		echo_loop(sv[1]);
	char c = 'x';
	double t0 = now_us();
	for (int i = 0; i < ROUNDS; i++) {
		if (write(sv[0], &c, 1) != 1 || read(sv[0], &c, 1) != 1) {
			perror("ping");
			return 1;
		}
	}
	double rtt = (now_us() - t0) / ROUNDS;
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "echo child failed\n");
		return 1;
	}
	printf("round trip %.1f us, %.1f us per cross-process wake-up\n", rtt, rtt / 2);
	return 0;
}
