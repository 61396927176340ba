/* load_parts.h - private: network sections of the loader (network.c). */
#ifndef OPENSHELL_POLICY_LOAD_PARTS_H
#define OPENSHELL_POLICY_LOAD_PARTS_H

#include "policy/load_int.h"

void load_network_policies(struct load_ctx *c, yaml_node_t *map, struct policy *p);
void load_middlewares(struct load_ctx *c, yaml_node_t *map, struct policy *p);
/* A fail_closed middleware must not select a `tls: skip` endpoint host. */
void check_middleware_tls_skip(struct load_ctx *c, struct policy *p);
/* The [ambig] stage: overlapping endpoints must agree (ambiguity.c). */
void check_endpoint_ambiguity(struct load_ctx *c, const struct policy *p);
void free_rule_model(struct policy_rule *r);
void free_middleware_model(struct policy_middleware *m);

#endif
