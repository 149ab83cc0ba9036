/* gonex/api.h: export marking shared by every public header. */
#ifndef GONEX_API_H
#define GONEX_API_H

#if defined(__GNUC__)
#define GX_API __attribute__((visibility("default")))
#else
#define GX_API
#endif

#endif
