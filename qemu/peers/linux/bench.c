/*
 * The Linux side of `cargo run -- bench --peer linux`: the same work as
 * kipc's bench, as /init of a Linux guest in the same QEMU (TCG,
 * -icount shift=0, so the time-stamp counter counts guest instructions).
 *
 * - round trips of 64 B and 4 KiB between two processes: through a pair of
 *   pipes, a pair of POSIX message queues, and a shared mapping with two
 *   process-shared semaphores (futexes);
 * - a 1 MiB file moved from a server process to a client process in 4 KiB
 *   chunks: through a pipe (file -> server buffer -> pipe -> client buffer ->
 *   file) and through shared memory (file -> shared buffer -> file).
 *
 * Output lines: `LINUX roundtrip MECHANISM SIZE INSTRUCTIONS` (per round
 * trip) and `LINUX file MECHANISM BYTES INSTRUCTIONS_PER_KIB`, then
 * `LINUX done`; the machine then powers off. Built static by the runner
 * (`cc -static -O2`), with no other dependency than the C library.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 1000
#define FILE_BYTES (1 << 20)
#define CHUNK 4096

static inline uint64_t instructions(void) {
    uint32_t low, high;
    __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
    return ((uint64_t)high << 32) | low;
}

static void fail(const char *what) {
    printf("LINUX FAIL %s: %s\n", what, strerror(errno));
    fflush(stdout);
    reboot(RB_POWER_OFF);
    _exit(1);
}

static void read_all(int fd, char *buffer, size_t length) {
    size_t done = 0;
    while (done < length) {
        ssize_t got = read(fd, buffer + done, length - done);
        if (got <= 0)
            fail("read");
        done += (size_t)got;
    }
}

static void write_all(int fd, const char *buffer, size_t length) {
    size_t done = 0;
    while (done < length) {
        ssize_t put = write(fd, buffer + done, length - done);
        if (put <= 0)
            fail("write");
        done += (size_t)put;
    }
}

static char message[CHUNK];

static void pipe_round_trips(size_t size) {
    int there[2], back[2];
    if (pipe(there) || pipe(back))
        fail("pipe");
    pid_t child = fork();
    if (child < 0)
        fail("fork");
    if (child == 0) {
        /* The warm-up, the measured rounds, and one after the clock stops
         * (so this process's exit is not measured). */
        for (int i = 0; i <= ROUNDS + 1; i++) {
            read_all(there[0], message, size);
            write_all(back[1], message, size);
        }
        _exit(0);
    }
    /* One warm-up round, then the measured ones. */
    write_all(there[1], message, size);
    read_all(back[0], message, size);
    uint64_t begin = instructions();
    for (int i = 0; i < ROUNDS; i++) {
        write_all(there[1], message, size);
        read_all(back[0], message, size);
    }
    uint64_t spent = instructions() - begin;
    write_all(there[1], message, size);
    read_all(back[0], message, size);
    waitpid(child, NULL, 0);
    close(there[0]), close(there[1]), close(back[0]), close(back[1]);
    printf("LINUX roundtrip pipe %zu %llu\n", size, (unsigned long long)(spent / ROUNDS));
}

static void mqueue_round_trips(size_t size) {
    struct mq_attr attr = {.mq_maxmsg = 4, .mq_msgsize = CHUNK};
    mq_unlink("/there");
    mq_unlink("/back");
    mqd_t there = mq_open("/there", O_CREAT | O_RDWR, 0600, &attr);
    mqd_t back = mq_open("/back", O_CREAT | O_RDWR, 0600, &attr);
    if (there == (mqd_t)-1 || back == (mqd_t)-1)
        fail("mq_open");
    pid_t child = fork();
    if (child < 0)
        fail("fork");
    if (child == 0) {
        for (int i = 0; i <= ROUNDS + 1; i++) {
            if (mq_receive(there, message, CHUNK, NULL) < 0)
                fail("mq_receive");
            if (mq_send(back, message, size, 0))
                fail("mq_send");
        }
        _exit(0);
    }
    if (mq_send(there, message, size, 0) || mq_receive(back, message, CHUNK, NULL) < 0)
        fail("mq warm-up");
    uint64_t begin = instructions();
    for (int i = 0; i < ROUNDS; i++) {
        if (mq_send(there, message, size, 0))
            fail("mq_send");
        if (mq_receive(back, message, CHUNK, NULL) < 0)
            fail("mq_receive");
    }
    uint64_t spent = instructions() - begin;
    if (mq_send(there, message, size, 0) || mq_receive(back, message, CHUNK, NULL) < 0)
        fail("mq last round");
    waitpid(child, NULL, 0);
    mq_close(there), mq_close(back);
    mq_unlink("/there"), mq_unlink("/back");
    printf("LINUX roundtrip mqueue %zu %llu\n", size, (unsigned long long)(spent / ROUNDS));
}

struct shared {
    sem_t request, response;
    char data[CHUNK];
};

static struct shared *shared_area(void) {
    struct shared *area = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED)
        fail("mmap");
    if (sem_init(&area->request, 1, 0) || sem_init(&area->response, 1, 0))
        fail("sem_init");
    return area;
}

static void shm_round_trips(size_t size) {
    struct shared *area = shared_area();
    pid_t child = fork();
    if (child < 0)
        fail("fork");
    if (child == 0) {
        for (int i = 0; i <= ROUNDS + 1; i++) {
            sem_wait(&area->request);
            memcpy(message, area->data, size);
            memcpy(area->data, message, size);
            sem_post(&area->response);
        }
        _exit(0);
    }
    memcpy(area->data, message, size);
    sem_post(&area->request);
    sem_wait(&area->response);
    uint64_t begin = instructions();
    for (int i = 0; i < ROUNDS; i++) {
        memcpy(area->data, message, size);
        sem_post(&area->request);
        sem_wait(&area->response);
        memcpy(message, area->data, size);
    }
    uint64_t spent = instructions() - begin;
    sem_post(&area->request);
    sem_wait(&area->response);
    waitpid(child, NULL, 0);
    munmap(area, sizeof(struct shared));
    printf("LINUX roundtrip shm %zu %llu\n", size, (unsigned long long)(spent / ROUNDS));
}

static void make_input(void) {
    int fd = open("/input", O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0)
        fail("open /input");
    for (int i = 0; i < FILE_BYTES / CHUNK; i++) {
        for (int j = 0; j < CHUNK; j++)
            message[j] = (char)(i * 31 + j * 7);
        write_all(fd, message, CHUNK);
    }
    close(fd);
}

static int same_files(void) {
    static char a[CHUNK], b[CHUNK];
    int x = open("/input", O_RDONLY), y = open("/output", O_RDONLY);
    if (x < 0 || y < 0)
        return 0;
    for (int i = 0; i < FILE_BYTES / CHUNK; i++) {
        read_all(x, a, CHUNK);
        read_all(y, b, CHUNK);
        if (memcmp(a, b, CHUNK))
            return 0;
    }
    close(x), close(y);
    return 1;
}

/* The server is started first and waits for a go byte, so process creation
 * stays outside the measurement (as kipc's experiment starts both sides
 * before its clock); the server's exit is inside it, as in kipc's. */
static void file_by_pipe(void) {
    int data[2], go[2];
    if (pipe(data) || pipe(go))
        fail("pipe");
    pid_t server = fork();
    if (server < 0)
        fail("fork");
    if (server == 0) {
        close(data[0]);
        static char buffer[CHUNK];
        read_all(go[0], buffer, 1);
        int in = open("/input", O_RDONLY);
        for (int i = 0; i < FILE_BYTES / CHUNK; i++) {
            read_all(in, buffer, CHUNK);
            write_all(data[1], buffer, CHUNK);
        }
        _exit(0);
    }
    close(data[1]);
    static char buffer[CHUNK];
    uint64_t begin = instructions();
    write_all(go[1], buffer, 1);
    int out = open("/output", O_CREAT | O_TRUNC | O_WRONLY, 0600);
    for (int i = 0; i < FILE_BYTES / CHUNK; i++) {
        read_all(data[0], buffer, CHUNK);
        write_all(out, buffer, CHUNK);
    }
    close(out);
    waitpid(server, NULL, 0);
    uint64_t spent = instructions() - begin;
    close(data[0]), close(go[0]), close(go[1]);
    printf("LINUX file pipe %d %llu %s\n", FILE_BYTES,
           (unsigned long long)(spent / (FILE_BYTES / 1024)), same_files() ? "verified" : "DIFFERENT");
}

static void file_by_shm(void) {
    struct shared *area = shared_area();
    pid_t server = fork();
    if (server < 0)
        fail("fork");
    if (server == 0) {
        sem_wait(&area->response); /* the go signal */
        int in = open("/input", O_RDONLY);
        for (int i = 0; i < FILE_BYTES / CHUNK; i++) {
            read_all(in, area->data, CHUNK);
            sem_post(&area->request);
            sem_wait(&area->response);
        }
        _exit(0);
    }
    uint64_t begin = instructions();
    sem_post(&area->response);
    int out = open("/output", O_CREAT | O_TRUNC | O_WRONLY, 0600);
    for (int i = 0; i < FILE_BYTES / CHUNK; i++) {
        sem_wait(&area->request);
        write_all(out, area->data, CHUNK);
        sem_post(&area->response);
    }
    close(out);
    waitpid(server, NULL, 0);
    uint64_t spent = instructions() - begin;
    munmap(area, sizeof(struct shared));
    printf("LINUX file shm %d %llu %s\n", FILE_BYTES,
           (unsigned long long)(spent / (FILE_BYTES / 1024)), same_files() ? "verified" : "DIFFERENT");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    mkdir("/dev", 0755);
    mkdir("/dev/mqueue", 0755);
    mount("mqueue", "/dev/mqueue", "mqueue", 0, NULL);
    printf("LINUX start\n");
    size_t sizes[] = {64, 4096};
    for (int s = 0; s < 2; s++) {
        pipe_round_trips(sizes[s]);
        mqueue_round_trips(sizes[s]);
        shm_round_trips(sizes[s]);
    }
    make_input();
    file_by_pipe();
    file_by_shm();
    printf("LINUX done\n");
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
