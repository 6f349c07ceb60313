/* CSV fields as the split files and score files write them (RFC 4180 quoting). */
#include <stdbool.h>

#include "tools/eval.h"

int eval_csv_split(char *line, char **fields, int max)
{
    int n = 0;
    char *r = line;
    while (n < max) {
        char *w = r;
        fields[n++] = w;
        if (*r == '"') {
            r++;
            while (*r) {
                if (*r == '"' && r[1] == '"') {
                    *w++ = '"';
                    r += 2;
                } else if (*r == '"') {
                    r++;
                    break;
                } else {
                    *w++ = *r++;
                }
            }
            while (*r && *r != ',') // anything between the closing quote and the comma
                r++;
        } else {
            while (*r && *r != ',')
                *w++ = *r++;
        }
        bool more = *r == ',';
        if (more)
            r++;
        *w = '\0';
        if (!more)
            break;
    }
    return n;
}
