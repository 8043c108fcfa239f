# Makefile — PGXS build of the darkspere extension; the worker and the unit tests build through CMake in build/.
#
#   make                 build darkspere.so only (seconds; what a DBA and the Debian package build)
#   make install         install the extension (library, control file, SQL scripts) into the server only
#   make worker          build darkspere-worker (CMake)          make install-worker   install it under
#                        WORKER_PREFIX (default /usr/local)
#   make check-unit      build and run the GoogleTest unit tests (ctest)
#   make world           everything: extension, worker, unit tests, benchmark peer
#   make install-world   install the extension and the worker
#   make installcheck    pg_regress + isolation specs against a running server (PGHOST/PGPORT)
#   scripts/test         everything, on a throwaway cluster (what CI runs)

EXTENSION = darkspere
MODULE_big = darkspere
DATA = $(wildcard sql/darkspere--*.sql)

COMMON_OBJS = src/common/crypto.o src/common/form.o src/common/twilio_signature.o \
              src/common/stripe_signature.o src/common/sms_segments.o src/common/e164.o \
              src/common/reply_chunks.o
EXT_OBJS = src/ext/module.o src/ext/errors.o src/ext/spi_plans.o src/ext/validate.o \
           src/ext/accounts.o src/ext/sessions.o src/ext/routing.o src/ext/health.o src/ext/ratelimit.o \
           src/ext/billing.o src/ext/consent.o src/ext/inbound.o src/ext/inbound_batch.o src/ext/enqueue.o \
           src/ext/claim.o src/ext/ack.o src/ext/turn_complete.o src/ext/ack_batch.o \
           src/ext/counter_batch.o src/ext/handoff.o src/ext/jsonb_fields.o src/ext/delivery.o \
           src/ext/maintenance.o src/ext/route_waiting.o src/ext/notify.o \
           src/ext/crypto_sql.o src/ext/sms_sql.o src/ext/common_bridge.o src/ext/agent_secrets.o \
           src/ext/version_check.o src/ext/api_keys.o src/ext/probes.o src/ext/agent_events.o \
           src/ext/trace.o src/ext/alerts.o src/ext/plan_gate.o src/ext/tenant_batch.o \
           src/ext/citus_commit.o
OBJS = $(EXT_OBJS) $(COMMON_OBJS)

PG_CONFIG ?= pg_config
# The version is written once, in darkspere.control; the library is told which one it was built for.
EXTVERSION := $(shell sed -n "s/^default_version = '\\(.*\\)'/\\1/p" $(dir $(firstword $(MAKEFILE_LIST)))darkspere.control)
PG_CPPFLAGS = -Isrc -isystem $(shell $(PG_CONFIG) --includedir-server) -DDARKSPERE_VERSION='"$(EXTVERSION)"'
# -MMD -MP: each object also records the headers it read (.d files), so changing a header rebuilds its users.
PG_CXXFLAGS = -std=c++17 -Wno-register -Wall -Wextra -Werror=implicit-fallthrough -fno-omit-frame-pointer -MMD -MP
SHLIB_LINK = -lstdc++ -lcrypto

REGRESS = $(basename $(notdir $(wildcard test/regress/sql/*.sql)))
REGRESS_OPTS = --inputdir=test/regress --outputdir=test/regress/results --load-extension=darkspere
ISOLATION = $(basename $(notdir $(wildcard test/regress/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/regress --outputdir=test/regress/output_iso --load-extension=darkspere

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Debian's PostgreSQL is built with LLVM, so PGXS compiles every source a second time to bitcode with clang.
# That rule ignores PG_CXXFLAGS (and so -std=c++17); hand them over explicitly (docs/architecture.md#build).
COMPILE.cxx.bc += $(PG_CPPFLAGS) -std=c++17 -Wno-register
-include $(OBJS:.o=.d)
src/ext/version_check.o src/ext/version_check.bc: darkspere.control
EXTRA_CLEAN = $(OBJS:.o=.d)

# The C++ daemon and the unit tests are CMake's; these targets only drive it, so `make` stays extension-only.
CMAKE_BUILD_DIR ?= build
.PHONY: cmake-configure worker check-unit install-worker world install-world
cmake-configure:
	cmake -S . -B $(CMAKE_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
worker: cmake-configure
	+cmake --build $(CMAKE_BUILD_DIR) --target darkspere-worker
check-unit: cmake-configure
	+cmake --build $(CMAKE_BUILD_DIR)
	cd $(CMAKE_BUILD_DIR) && ctest --output-on-failure -j2
install-worker: worker
	cmake --install $(CMAKE_BUILD_DIR) --prefix $(or $(WORKER_PREFIX),/usr/local) >/dev/null
world: all cmake-configure
	+cmake --build $(CMAKE_BUILD_DIR)
install-world: install install-worker
clean: worker-clean
worker-clean:
	rm -rf $(CMAKE_BUILD_DIR) test/regress/results test/regress/output_iso
