#!/bin/bash
# admin_api_spec.sh - docs/admin-api.yaml and danejoind's route table (adm_routes in
# joinserver/danejoind/admin_routes.c) name the same operations with the same scopes.
#
# Usage: bash admin_api_spec.sh SOURCE_DIR
set -u
SRC=${1:-.}
CODE=$SRC/joinserver/danejoind/admin_routes.c
SPEC=$SRC/docs/admin-api.yaml
# "METHOD PATH SCOPE" from the table: { "GET", "/api/v1/x", JS_SCOPE_READ, fn },
code=$(sed -n 's/^\t{ "\([A-Z]*\)", "\([^"]*\)", JS_SCOPE_\([A-Z]*\), .*/\1 \2 \3/p' "$CODE" |
	tr 'A-Z' 'a-z' | awk '{ print toupper($1), $2, $3 }' | sort)
# ... from the spec: a path line "  /api/v1/x:", method lines "    get:", "      x-scope: read"
spec=$(awk '
	/^  \/api\/v1\// { path = $1; sub(/:$/, "", path); next }
	/^    (get|post|delete|put|patch):/ { m = $1; sub(/:$/, "", m); next }
	/^      x-scope:/ { if ($2 != "none") print toupper(m), path, $2 }' "$SPEC" | sort)
if [ -z "$code" ] || [ "$code" != "$spec" ]; then
	echo "docs/admin-api.yaml and adm_routes[] differ (< code, > spec):"
	diff <(echo "$code") <(echo "$spec")
	exit 1
fi
echo "admin API: $(echo "$code" | wc -l) operations, spec and code agree"
