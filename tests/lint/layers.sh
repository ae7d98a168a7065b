#!/usr/bin/env bash
# tests/lint/layers.sh - fail when a library includes a library above it (docs/architecture.md).
#
# Includes name their folder ("store/js_store.h"), so the folder of every quoted include is the
# library it depends on. Each library folder lists the folders it may include; a program folder
# may include any library but no other program. A header of its own folder is always allowed.
#
#   tests/lint/layers.sh [SOURCE_DIR]
set -uo pipefail
top=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$top" || exit 2

# folder (as written in includes) -> path in the tree, and what it may include
declare -A path=(
	[common]=common
	[lorawan]=joinserver/lorawan
	[backend-auth]=backend-auth
	[ca-tools]=ca-tools
	[store]=joinserver/store
	[engine]=joinserver/engine
	[bi]=joinserver/bi
	[events]=joinserver/events
	[ownership]=devices/ownership
)
declare -A may=(
	[common]=""
	[lorawan]="common"
	[backend-auth]="common"
	[ca-tools]="common"
	[store]="lorawan common"
	[engine]="store lorawan common"
	[bi]="lorawan backend-auth common"
	[events]="bi store lorawan common"
	[ownership]="store backend-auth ca-tools lorawan common"
)
programs="joinserver/danejoind devices/danejoin-devices client/danejoin-client ca-tools/danejoin-ca"

bad=0
# check_file FILE OWN ALLOWED - every quoted include with a folder must be OWN or in ALLOWED
check_file() {
	local file=$1 own=$2 allowed=$3 inc dir
	while IFS= read -r inc; do
		dir=${inc%%/*}
		[ "$dir" = "$inc" ] && continue # a header beside the file
		[ "$dir" = "$own" ] && continue
		case " $allowed " in *" $dir "*) continue ;; esac
		echo "layers: $file includes \"$inc\": $own may not depend on $dir" >&2
		bad=1
	done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$file")
}

for lib in "${!path[@]}"; do
	for f in "${path[$lib]}"/*.c "${path[$lib]}"/*.h; do
		[ -e "$f" ] && check_file "$f" "$lib" "${may[$lib]}"
	done
done
all="${!path[*]}"
for prog in $programs; do
	for f in "$prog"/*.c "$prog"/*.h; do
		[ -e "$f" ] && check_file "$f" "" "$all"
	done
done
# a library folder must not hold a file outside this map (a new folder needs a line above)
for d in joinserver/* devices/* client/* common backend-auth ca-tools; do
	[ -d "$d" ] || continue
	ls "$d"/*.c >/dev/null 2>&1 || continue
	known=0
	for lib in "${!path[@]}"; do [ "${path[$lib]}" = "$d" ] && known=1; done
	case " $programs " in *" $d "*) known=1 ;; esac
	[ $known = 1 ] || { echo "layers: $d holds C sources but has no layer in tests/lint/layers.sh" >&2; bad=1; }
done
[ $bad = 0 ] && echo "layers: every include points down"
exit $bad
