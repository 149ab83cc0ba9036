/*
 * Intrusive doubly-linked lists whose head is a plain pointer to the first
 * element, NULL when empty: every live coroutine (core/sched.c), a wait
 * queue's nodes (core/wait.h, which keeps its tail beside the head), the
 * ops in flight on an fd (io/op.c), a context's children (sync/context.c).
 *
 * An element links through two members of its own pointer type, named at
 * each use, so that one element can sit on several lists (a coroutine's
 * `next` is its run-queue link, all_next/all_prev its place among the live
 * ones). The first element's prev is NULL; the last one's next is NULL.
 *
 * Macros, because the element types differ and C11 has no generics. Each
 * argument is evaluated more than once: pass plain lvalues.
 */
#ifndef GX_CORE_LIST_H
#define GX_CORE_LIST_H

#include <stddef.h>

/* Put n first in the list at *head. */
#define GX_LIST_PUSH(head, n, next, prev)        \
	do {                                     \
		(n)->prev = NULL;                \
		(n)->next = *(head);             \
		if ((n)->next)                   \
			(n)->next->prev = (n);   \
		*(head) = (n);                   \
	} while (0)

/* Take n out of the list at *head: its neighbours (or *head) skip it. n's
 * own links are left as they were. */
#define GX_LIST_UNLINK(head, n, next, prev)              \
	do {                                             \
		if ((n)->prev)                           \
			(n)->prev->next = (n)->next;     \
		else                                     \
			*(head) = (n)->next;             \
		if ((n)->next)                           \
			(n)->next->prev = (n)->prev;     \
	} while (0)

#endif
