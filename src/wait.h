/*
** wait.h: what the loop (src/loop.c) knows of a source it waits on
** besides its fds: a userdata whose metatable holds, at CP_WAITSRC, a
** light userdata pointing to the source's cp_waitsrc (a channel's
** decoder has one for its rings: src/frame.c). core.wait and core.arm
** take a table of sources and ask each before the loop sleeps; a spin
** polls them. A source's metatable must live as long as the state (a
** registered one does): the loop remembers the last one it read.
*/
#ifndef CP_WAIT_H
#define CP_WAIT_H

#define CP_WAITSRC "__waitsrc"

typedef struct cp_waitsrc {
  /* Before the loop sleeps: asks to be woken through its doorbell (an
  ** fd the loop watches); 1 with *bell = that fd when there is news
  ** already (the loop then reports it readable and does not sleep) */
  int (*arm)(void *u, int *bell);
  /* For the loop's spin, without arming, running on CPU cpu: 1 with
  ** *bell = its doorbell when there is news; else 0, with *active set
  ** when news may come within microseconds (its peer is awake on
  ** another CPU) */
  int (*poll)(void *u, int cpu, int *bell, int *active);
  /* Its doorbell, or -1 */
  int (*bell)(void *u);
} cp_waitsrc;

#endif
