/*
 * Copyright (C) ngx_chat_module authors
 *
 * A CPU load of a share of one core, for the fan-out ceiling's second
 * run (tools/bench/run): it spins for SHARE of every 10 ms and sleeps the
 * rest, until killed.  Two of them beside the ceiling stand for the
 * store's CPU beside our server in the same run, without the store: what
 * that contention alone costs a server's deliveries.
 *
 *   cpu-load SHARE        0 < SHARE <= 1
 */

#include <stdio.h>
#include <stdlib.h>
#include <time.h>


#define CL_PERIOD_NS  10000000LL


static long long
cl_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}


int
main(int argc, char **argv)
{
    double           share;
    long long        start, spin;
    struct timespec  rest;

    share = argc == 2 ? atof(argv[1]) : 0;

    if (share <= 0 || share > 1) {
        fprintf(stderr, "usage: cpu-load SHARE (0 < SHARE <= 1)\n");
        return 1;
    }

    spin = (long long) (share * CL_PERIOD_NS);

    for ( ;; ) {
        start = cl_now();

        while (cl_now() - start < spin) {
            /* spin */
        }

        if (spin < CL_PERIOD_NS) {
            rest.tv_sec = 0;
            rest.tv_nsec = CL_PERIOD_NS - spin;
            nanosleep(&rest, NULL);
        }
    }

    return 0;
}
