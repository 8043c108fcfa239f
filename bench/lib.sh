# bench/lib.sh — helpers shared by the bench runners (sourced).

# median of numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "nan"; exit} if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# percentile P (0-100) of numbers on stdin, nearest-rank
percentile() { sort -g | awk -v p="$1" '{a[NR]=$1} END {if (NR==0) {print "nan"; exit} k=int((p/100)*NR+0.999999); if (k<1) k=1; if (k>NR) k=NR; print a[k]}'; }

# ratio A/B with 3 decimals
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "nan"; else printf "%.3f\n", a / b }'; }

hardware() {
    echo "nproc: $(nproc)"
    echo "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "postgres: $(postgres --version 2>/dev/null || /usr/lib/postgresql/15/bin/postgres --version)"
}
# pgbench_stats OUTPUT LOG_PREFIX — prints "tps p50_ms p99_ms" of one pgbench run from its output and its
# per-transaction logs (--log --log-prefix=LOG_PREFIX; removed after). Fails, printing the output, when pgbench
# reported no tps.
pgbench_stats() {
    local tps ms
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$1")
    [[ -n $tps ]] || { echo "$1" >&2; return 1; }
    ms=$(cat "$2".* | awk '{print $3/1000}')
    rm -f "$2".*
    echo "$tps $(percentile 50 <<<"$ms") $(percentile 99 <<<"$ms")"
}

# put_lib FILE — installs FILE as the extension's library by renaming a copy over it: a new file, so that a
# server already running from the old one (another cluster on this machine, a test suite) keeps its mapping.
# Copying over the file in place changes the code under its backends, which crash. Every pgbench run opens
# new connections, which load the library installed then.
put_lib() {
    local installed
    installed="$(pg_config --pkglibdir)/darkspere.so"
    cp "$1" "$installed.ab.$$" && mv -f "$installed.ab.$$" "$installed"
}

