/* rules_int.h - private interface between endpoint.c and rules.c. */
#ifndef OPENSHELL_POLICY_RULES_INT_H
#define OPENSHELL_POLICY_RULES_INT_H

#include "policy/load_int.h"

/* What rule validation needs to know about the enclosing endpoint. */
struct ep_info {
	enum policy_protocol protocol;
	bool mcp_allow_all;
	bool mcp_strict_tool_names;
};

/* Rules being loaded, with the YAML node of each for messages. */
struct rule_list {
	struct policy_l7_rule *rules;
	yaml_node_t **nodes;
	size_t n;
};

bool load_matcher(struct load_ctx *c, yaml_node_t *v, const char *what,
		  struct policy_query_matcher *m);
void free_matcher(struct policy_query_matcher *m);
void free_rule(struct policy_l7_rule *r);
void free_rule_list(struct policy_l7_rule *rules, size_t n);

bool load_rule_list(struct load_ctx *c, yaml_node_t *list, bool is_deny,
		    const struct ep_info *e, struct rule_list *out);
bool all_rules_empty(const struct rule_list *l);
void finish_mcp_rules(struct load_ctx *c, const struct ep_info *e,
		      struct rule_list *allow, struct rule_list *deny);
void finish_ws_rules(struct load_ctx *c, const struct rule_list *allow,
		     const struct rule_list *deny, bool has_pq);
/* Fills out (empty on entry) with the preset's rules; false on OOM. */
bool expand_preset(enum policy_protocol proto, enum policy_access access,
		   struct rule_list *out);

#endif
