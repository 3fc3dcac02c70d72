/*
 * The example job of this stage: count flights and total delay per origin airport with a
 * supervised pipeline of actors (reader on the calling thread -> parser -> counter).
 */
#ifndef EDDY_EXAMPLES_FLIGHTS_COUNT_H
#define EDDY_EXAMPLES_FLIGHTS_COUNT_H

#include <stdio.h>

/* flights_count reads the CSV file at path (plain or .gz; header
 * date,delay,distance,origin,destination), and writes origin,flights,total_delay rows
 * sorted by origin to out. workers: scheduler threads (0 = cores). Returns 0 on
 * success, 1 if the job failed (the reason, naming file and line, is printed on err). */
int flights_count(const char *path, unsigned workers, FILE *out, FILE *err);

#endif
