// src/worker/spool.cpp — spool segment files, cursor, quarantine and lock (see spool.hpp).
#include "spool.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <boost/crc.hpp>

namespace darkspere::worker {

namespace {

// CRC-32C: polynomial 0x1EDC6F41, reflected, initial and final XOR all ones.
using Crc32c = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

void put_u32(std::string &out, uint32_t v) {
    for (int i = 0; i < 4; ++i)
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t get_u32(std::string_view data, uint64_t at) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i)
        v = (v << 8) | static_cast<unsigned char>(data[at + i]);
    return v;
}

[[noreturn]] void fail(const std::string &what, const std::string &path) {
    throw std::system_error(errno, std::generic_category(), what + " " + path);
}

void write_all(int fd, std::string_view bytes, const std::string &path) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail("write", path);
        bytes.remove_prefix(static_cast<size_t>(n));
    }
}

// fsync_dir — makes a file's creation, rename or removal in dir durable.
void fsync_dir(const std::string &dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        fail("open", dir);
    int r = ::fsync(fd);
    int saved = errno;
    ::close(fd);
    errno = saved;
    if (r != 0)
        fail("fsync", dir);
}

// whole_record_at — the length of a complete, CRC-valid record at `at`, if there is one.
std::optional<uint64_t> whole_record_at(std::string_view data, uint64_t at) {
    if (at + SPOOL_RECORD_HEADER > data.size() || get_u32(data, at) != SPOOL_RECORD_MAGIC)
        return std::nullopt;
    uint32_t len = get_u32(data, at + 4);
    if (len > SPOOL_RECORD_MAX || at + SPOOL_RECORD_HEADER + len > data.size())
        return std::nullopt;
    uint32_t crc = spool_crc32c(data.substr(at + 4, 4));
    crc = spool_crc32c(data.substr(at + SPOOL_RECORD_HEADER, len), crc);
    if (crc != get_u32(data, at + 8))
        return std::nullopt;
    return SPOOL_RECORD_HEADER + len;
}

}  // namespace

uint32_t spool_crc32c(std::string_view bytes, uint32_t crc) {
    // To continue a CRC, undo its final XOR; boost takes the initial remainder unreflected and reflects it
    // itself for a reflected CRC, so it is reflected back first.
    uint32_t state = crc ^ 0xFFFFFFFF, unreflected = 0;
    for (int i = 0; i < 32; ++i)
        unreflected |= ((state >> i) & 1u) << (31 - i);
    Crc32c c(unreflected);
    c.process_bytes(bytes.data(), bytes.size());
    return c.checksum();
}

std::string spool_encode_record(std::string_view payload) {
    std::string out;
    out.reserve(SPOOL_RECORD_HEADER + payload.size());
    put_u32(out, SPOOL_RECORD_MAGIC);
    put_u32(out, static_cast<uint32_t>(payload.size()));
    uint32_t crc = spool_crc32c(std::string_view(out).substr(4, 4));
    put_u32(out, spool_crc32c(payload, crc));
    out.append(payload);
    return out;
}

SpoolParse spool_parse(std::string_view data, uint64_t offset, bool closed) {
    SpoolParse p;
    offset = std::max<uint64_t>(offset, SPOOL_SEGMENT_HEADER);
    if (offset >= data.size()) {
        p.kind = SpoolParse::Kind::end;
        p.next = offset;
        return p;
    }
    if (auto len = whole_record_at(data, offset)) {
        p.kind = SpoolParse::Kind::record;
        p.payload.assign(data.substr(offset + SPOOL_RECORD_HEADER, *len - SPOOL_RECORD_HEADER));
        p.next = offset + *len;
        return p;
    }
    // A good header whose payload runs past the end: still being written (an open segment), or cut short by
    // a crash — unless a good record follows, in which case the length itself is damaged.
    bool header_ok = offset + SPOOL_RECORD_HEADER <= data.size() &&
                     get_u32(data, offset) == SPOOL_RECORD_MAGIC &&
                     get_u32(data, offset + 4) <= SPOOL_RECORD_MAX &&
                     offset + SPOOL_RECORD_HEADER + get_u32(data, offset + 4) > data.size();
    bool short_header = offset + SPOOL_RECORD_HEADER > data.size();
    if ((header_ok || short_header) && !closed) {
        p.kind = SpoolParse::Kind::more;
        p.next = offset;
        return p;
    }
    // Skip to the next place a whole good record starts (the magic and the CRC over length and payload make a
    // false match vanishingly unlikely), so one bad record costs only itself.
    uint64_t at = offset + 1;
    for (; at + SPOOL_RECORD_HEADER <= data.size(); ++at) {
        if (whole_record_at(data, at))
            break;
    }
    if (at + SPOOL_RECORD_HEADER > data.size())
        at = data.size();
    p.kind = at == data.size() && (header_ok || short_header) ? SpoolParse::Kind::torn_tail
                                                              : SpoolParse::Kind::corrupt;
    p.skipped = data.substr(offset, at - offset);
    p.next = at;
    return p;
}

std::string spool_segment_path(const std::string &dir, uint64_t id) {
    char name[32];
    std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(id));
    return dir + "/" + name;
}

std::vector<SpoolSegment> spool_list_segments(const std::string &dir) {
    std::vector<SpoolSegment> out;
    DIR *d = ::opendir(dir.c_str());
    if (!d)
        fail("opendir", dir);
    while (dirent *e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name.size() != 24 || name.compare(20, 4, ".seg") != 0 ||
            !std::all_of(name.begin(), name.begin() + 20, [](char c) { return c >= '0' && c <= '9'; }))
            continue;
        struct stat st {};
        if (::stat((dir + "/" + name).c_str(), &st) != 0)
            continue;
        out.push_back({std::stoull(name.substr(0, 20)), static_cast<uint64_t>(st.st_size)});
    }
    ::closedir(d);
    std::sort(out.begin(), out.end(),
              [](const SpoolSegment &a, const SpoolSegment &b) { return a.id < b.id; });
    return out;
}

int spool_prepare_dir(const std::string &dir) {
    for (const std::string &path : {dir, dir + "/quarantine"}) {
        if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
            throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
    }
    std::string lock = dir + "/lock";
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        throw std::runtime_error("cannot open " + lock + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int saved = errno;
        ::close(fd);
        if (saved == EWOULDBLOCK)
            throw std::runtime_error("spool-dir " + dir +
                                     " is in use by another worker process (it holds the lock on " + lock +
                                     ")");
        throw std::runtime_error("cannot lock " + lock + ": " + std::strerror(saved));
    }
    return fd;
}

std::optional<SpoolCursor> spool_load_cursor(const std::string &dir) {
    int fd = ::open((dir + "/cursor").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return std::nullopt;
    char buf[20];
    ssize_t n = ::pread(fd, buf, sizeof buf, 0);
    ::close(fd);
    if (n != static_cast<ssize_t>(sizeof buf))
        return std::nullopt;
    std::string_view data(buf, sizeof buf);
    if (spool_crc32c(data.substr(0, 16)) != get_u32(data, 16))
        return std::nullopt;
    SpoolCursor c;
    c.segment = static_cast<uint64_t>(get_u32(data, 0)) | static_cast<uint64_t>(get_u32(data, 4)) << 32;
    c.offset = static_cast<uint64_t>(get_u32(data, 8)) | static_cast<uint64_t>(get_u32(data, 12)) << 32;
    return c;
}

void spool_save_cursor(const std::string &dir, const SpoolCursor &cursor) {
    std::string out;
    put_u32(out, static_cast<uint32_t>(cursor.segment));
    put_u32(out, static_cast<uint32_t>(cursor.segment >> 32));
    put_u32(out, static_cast<uint32_t>(cursor.offset));
    put_u32(out, static_cast<uint32_t>(cursor.offset >> 32));
    put_u32(out, spool_crc32c(out));
    std::string path = dir + "/cursor";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        fail("open", path);
    // 20 bytes in place, within one sector; a torn update fails its CRC and replay starts over (harmless).
    ssize_t n = ::pwrite(fd, out.data(), out.size(), 0);
    int saved = errno;
    ::close(fd);
    errno = saved;
    if (n != static_cast<ssize_t>(out.size()))
        fail("write", path);
}

std::string spool_quarantine(const std::string &dir, const std::string &name, std::string_view bytes) {
    std::string path = dir + "/quarantine/" + name;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        fail("open", path);
    try {
        write_all(fd, bytes, path);
        if (::fsync(fd) != 0)
            fail("fsync", path);
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
    fsync_dir(dir + "/quarantine");
    return path;
}

void spool_read_segment(const std::string &dir, uint64_t id, uint64_t from, std::string *out) {
    std::string path = spool_segment_path(dir, id);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail("open", path);
    char buf[65536];
    for (;;) {
        ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(from));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            ::close(fd);
            errno = saved;
            fail("read", path);
        }
        if (n == 0)
            break;
        out->append(buf, static_cast<size_t>(n));
        from += static_cast<uint64_t>(n);
    }
    ::close(fd);
}

// ---- SpoolWriterFiles ----

SpoolWriterFiles::SpoolWriterFiles(std::string dir, uint64_t segment_bytes, uint64_t next_id)
    : dir_(std::move(dir)), segment_bytes_(std::max<uint64_t>(segment_bytes, 4096)), next_id_(next_id) {}

SpoolWriterFiles::~SpoolWriterFiles() {
    close_current();
}

void SpoolWriterFiles::close_current() {
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = -1;
}

void SpoolWriterFiles::open_next() {
    close_current();
    id_ = next_id_++;
    std::string path = spool_segment_path(dir_, id_);
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd_ < 0)
        fail("create", path);
    size_ = 0;
    try {
        write_all(fd_, std::string_view(SPOOL_SEGMENT_MAGIC, SPOOL_SEGMENT_HEADER), path);
    } catch (...) {
        close_current();
        throw;
    }
    size_ = SPOOL_SEGMENT_HEADER;
}

std::vector<SpoolWriterFiles::Placed> SpoolWriterFiles::append(const std::vector<std::string> &records) {
    std::vector<Placed> placed;
    placed.reserve(records.size());
    uint64_t durable = fd_ >= 0 ? size_ : 0;  // the open segment's size when this call began
    bool new_segment = false;
    auto sync_current = [&] {
        if (::fdatasync(fd_) != 0)
            fail("fdatasync", spool_segment_path(dir_, id_));
        if (new_segment)
            fsync_dir(dir_);
        new_segment = false;
    };
    try {
        for (const std::string &rec : records) {
            if (fd_ < 0 || (size_ > SPOOL_SEGMENT_HEADER && size_ + rec.size() > segment_bytes_)) {
                if (fd_ >= 0)
                    sync_current();
                open_next();
                durable = 0;
                new_segment = true;
            }
            write_all(fd_, rec, spool_segment_path(dir_, id_));
            size_ += rec.size();
            placed.push_back({id_, size_});
        }
        if (fd_ >= 0)
            sync_current();
    } catch (...) {
        // The records of this call are not answered as stored; cut the segment back so it ends on a whole
        // record, and write the next ones to a fresh segment.
        if (fd_ >= 0) {
            if (durable > 0 && ::ftruncate(fd_, static_cast<off_t>(durable)) == 0) {
                (void)::fdatasync(fd_);
                size_ = durable;
            }
            close_current();
        }
        throw;
    }
    return placed;
}

void SpoolWriterFiles::retire(uint64_t id, uint64_t size) {
    // A segment closed after a failed write is retired the same way, once its records are stored.
    if (id_ != id || size_ != size)
        return;
    close_current();
    std::string path = spool_segment_path(dir_, id);
    if (::unlink(path.c_str()) != 0)
        fail("unlink", path);
}

}  // namespace darkspere::worker
