// src/ext/tenant_batch.cpp — whether cross-tenant batches are written tenant by tenant (tenant_batch.hpp).
#include "ext/tenant_batch.hpp"

namespace darkspere {

static Statement kCitusInstalled = {
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')", 0, {}, nullptr};

bool tenant_tables_distributed() {
    return spi_run(kCitusInstalled, nullptr, nullptr, true, 1).get_bool(0, 1);
}

}  // namespace darkspere
