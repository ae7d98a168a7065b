/*
 * dj_dns.c - names of the shared DNS verdicts (common/dj_dns.h).
 */
#include "common/dj_dns.h"

const char *da_status_str(enum da_status st)
{
	switch (st) {
	case DA_SECURE:
		return "secure";
	case DA_NXDOMAIN:
		return "nxdomain";
	case DA_NODATA:
		return "nodata";
	case DA_UNUSABLE:
		return "unusable";
	case DA_INSECURE:
		return "insecure";
	case DA_BOGUS:
		return "bogus";
	case DA_TEMPFAIL:
		return "tempfail";
	}
	return "unknown";
}
