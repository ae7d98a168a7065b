#!/bin/bash
# test_pg_admin_transfer.sh - test_admin_transfer.sh on a private PostgreSQL cluster: auth codes
# and transfers by auth code through the management API, the transfer worker sharing
# danejoind's PostgreSQL store handle with the event loop.
#
# Usage: bash test_pg_admin_transfer.sh BUILD_DIR SOURCE_DIR   (run by ctest)
DJ_XFER_PG=1 exec bash "$(dirname "$0")/test_admin_transfer.sh" "$@"
