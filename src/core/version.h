/* The version of stasis (`stasis --version`, the RPC's VERSION answer). */
#ifndef STASIS_CORE_VERSION_H
#define STASIS_CORE_VERSION_H

#define STASIS_VERSION "0.1.0"

#endif
