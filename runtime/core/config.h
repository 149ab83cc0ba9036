/* Internal helpers over gx_config. */
#ifndef GX_CORE_CONFIG_H
#define GX_CORE_CONFIG_H

#include <gonex/config.h>

/* The weight of worker i from cfg->weights (1 when not given). */
int gx_config_weight(const gx_config *cfg, int worker);

#endif
