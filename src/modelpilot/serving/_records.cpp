// The usual /predict body of an all-float model read straight into packed rows of doubles.
//
// Why compiled: for a one-record body of 20 columns, msgspec's typed decode, the record's
// 20 float objects and their tuple, and packing them into the batch's matrix cost ~15,000
// instructions a request on the data plane (callgrind, benchmarks/serving_plane_instructions.py);
// reading the bytes once into the doubles the matrix is made of saves ~9,400 of them.
// No JSON library offers "records of known float columns into a float64 buffer".
//
// It only ever accepts, like records_decoder.py's msgspec decoder it stands in front of: any
// body it does not take exactly (another shape, a missing, extra or repeated column, a key
// with an escape, a value that is not a JSON number, a number out of float64's range,
// malformed JSON, trailing bytes, more than max_rows records, an empty list) gives None, and
// the request goes through the decoders that accept or name what is wrong. Every read is
// bounds-checked against the body's length; the body is never written.
//
// Numbers: the JSON grammar is checked as the digits are read; the usual number is converted
// exactly there, any other by std::from_chars (libstdc++ 12+: correctly rounded, locale-free).

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <charconv>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace {

struct Columns {
    std::vector<std::string> names;                    // in signature order
    std::unordered_map<std::string_view, Py_ssize_t> index;  // name -> position
};

const char* const kCapsule = "modelpilot.serving._records.Columns";

void free_columns(PyObject* capsule) {
    delete static_cast<Columns*>(PyCapsule_GetPointer(capsule, kCapsule));
}

// Powers of ten a double holds exactly (Clinger's fast path below), and those a 64-bit
// integer holds.
constexpr double kExactPowers[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

constexpr uint64_t kPowersOfTen[] = {
    1ULL,          10ULL,          100ULL,          1000ULL,          10000ULL,
    100000ULL,     1000000ULL,     10000000ULL,     100000000ULL,     1000000000ULL,
    10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
    100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
    1000000000000000000ULL, 10000000000000000000ULL};

struct Cursor {
    const char* at;
    const char* end;

    void skip_space() {
        while (at < end && (*at == ' ' || *at == '\n' || *at == '\r' || *at == '\t')) ++at;
    }
    bool take(char c) {
        if (at < end && *at == c) {
            ++at;
            return true;
        }
        return false;
    }
    static bool digit(char c) { return c >= '0' && c <= '9'; }

    // The digits at the cursor appended to ``mantissa`` (wrapping past 19 digits): eight at a
    // time while eight are there (a number's digits are most of a body's bytes), then one by one.
    void digits_into(uint64_t* mantissa) {
        uint64_t value = *mantissa;
        while (end - at >= 8) {
            uint64_t chunk;
            std::memcpy(&chunk, at, 8);
            if (!eight_digits(chunk)) break;
            value = value * 100000000 + eight_digits_value(chunk);
            at += 8;
        }
        while (at < end && digit(*at)) value = value * 10 + static_cast<uint64_t>(*at++ - '0');
        *mantissa = value;
    }
    // Whether the 8 bytes (little-endian) are all '0'..'9': a byte above '9' carries into its
    // top bit when 0x46 is added, one below '0' borrows into it when 0x30 is taken away.
    static bool eight_digits(uint64_t chunk) {
        return !(((chunk + 0x4646464646464646ULL) | (chunk - 0x3030303030303030ULL)) &
                 0x8080808080808080ULL);
    }
    // The 8 digits' value, first byte most significant: pairs, then fours, then all eight, each
    // step one multiply-add across the lanes.
    static uint64_t eight_digits_value(uint64_t chunk) {
        chunk -= 0x3030303030303030ULL;                              // bytes 0..9
        chunk = (chunk * 10) + (chunk >> 8);                         // 16-bit lanes: 2 digits
        chunk = (((chunk & 0x000000FF000000FFULL) * 0x000F424000000064ULL) +    // x100, x10^6
                 (((chunk >> 16) & 0x000000FF000000FFULL) * 0x0000271000000001ULL)) >>  // x1, x10^4
                32;
        return chunk & 0xFFFFFFFFULL;
    }
    static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "eight_digits reads little-endian");

    // One JSON number at the cursor, converted; false for anything else (or out of range).
    // The grammar is checked as the digits are read into a 64-bit mantissa. Up to 19 digits
    // and a power of ten up to 19 either way, the value is converted exactly here (below);
    // any other number goes to std::from_chars, which converts the checked text exactly.
    bool number(double* out) {
        const char* start = at;
        const bool negative = take('-');
        uint64_t mantissa = 0;  // wraps past 19 digits: then unused
        if (at >= end) return false;
        const char* digits = at;
        if (*at == '0') {
            ++at;
        } else if (*at >= '1' && *at <= '9') {
            digits_into(&mantissa);
        } else {
            return false;
        }
        long count = at - digits;
        long exponent = 0;
        if (take('.')) {
            const char* fraction = at;
            digits_into(&mantissa);
            if (at == fraction) return false;
            count += at - fraction;
            exponent = -(at - fraction);
        }
        if (at < end && (*at == 'e' || *at == 'E')) {
            ++at;
            const bool down = take('-');
            if (!down) take('+');
            if (at >= end || !digit(*at)) return false;
            long power = 0;
            while (at < end && digit(*at)) {
                if (power < 100000) power = power * 10 + (*at - '0');  // beyond: from_chars
                ++at;
            }
            exponent += down ? -power : power;
        }
        if (count <= 19 && exact(mantissa, exponent, out)) {
            if (negative) *out = -*out;
            return true;
        }
        auto [ptr, ec] = std::from_chars(start, at, *out, std::chars_format::general);
        return ec == std::errc() && ptr == at && std::isfinite(*out);
    }

    // mantissa x 10^exponent correctly rounded (to nearest, ties to even), when |exponent| <= 19.
    // Clinger's fast path first (a mantissa of at most 2^53 and a power of ten up to 22 are
    // exact doubles: one multiplication or division rounds once); else the exact product or
    // quotient in 128-bit integers, rounded to 53 bits here.
    static bool exact(uint64_t mantissa, long exponent, double* out) {
        if (mantissa <= (uint64_t{1} << 53) && exponent >= -22 && exponent <= 22) {
            const double value = static_cast<double>(mantissa);
            *out = exponent < 0 ? value / kExactPowers[-exponent] : value * kExactPowers[exponent];
            return true;
        }
        if (exponent < -19 || exponent > 19) return false;
        if (exponent >= 0) {  // < 2^64 x 10^19 < 2^128: exact
            *out = rounded(static_cast<unsigned __int128>(mantissa) * kPowersOfTen[exponent], false, 0);
            return true;
        }
        // mantissa / 10^k: the mantissa's top bit moved to bit 127, so the quotient has at least
        // 64 bits (10^k < 2^64) and the remainder says whether anything was left below them.
        const int shift = __builtin_clzll(mantissa);
        const unsigned __int128 scaled = static_cast<unsigned __int128>(mantissa << shift) << 64;
        const uint64_t divisor = kPowersOfTen[-exponent];
        const unsigned __int128 quotient = scaled / divisor;
        *out = rounded(quotient, scaled % divisor != 0, -64 - shift);
        return true;
    }

    // value x 2^power as the nearest double (ties to even); ``inexact``: a nonzero remainder
    // lies below value's last bit (so a tie is not one). value > 0; the result is normal.
    static double rounded(unsigned __int128 value, bool inexact, int power) {
        const uint64_t high = static_cast<uint64_t>(value >> 64);
        const int bits = high ? 128 - __builtin_clzll(high) : 64 - __builtin_clzll(static_cast<uint64_t>(value));
        if (bits <= 53)  // exact (only products are this short: quotients have 64 bits or more)
            return std::ldexp(static_cast<double>(static_cast<uint64_t>(value)), power);
        const int drop = bits - 53;
        uint64_t top = static_cast<uint64_t>(value >> drop);
        const unsigned __int128 rest = value & ((static_cast<unsigned __int128>(1) << drop) - 1);
        const unsigned __int128 half = static_cast<unsigned __int128>(1) << (drop - 1);
        if (rest > half || (rest == half && (inexact || (top & 1)))) ++top;  // 2^53 is exact too
        return std::ldexp(static_cast<double>(top), power + drop);
    }

    // The key at the cursor if it is ``name`` (raw bytes: names with a quote, a backslash or
    // a control character make no compiled decoder), its closing quote taken.
    bool key_is(const std::string& name) {
        const size_t length = name.size();
        if (static_cast<size_t>(end - at) < length + 2 || at[0] != '"' ||
            std::memcmp(at + 1, name.data(), length) != 0 || at[length + 1] != '"')
            return false;
        at += length + 2;
        return true;
    }

    // A key without escapes; false for an escape, a control character or no closing quote.
    bool key(std::string_view* out) {
        if (!take('"')) return false;
        const char* start = at;
        while (at < end && *at != '"') {
            unsigned char c = static_cast<unsigned char>(*at);
            if (c == '\\' || c < 0x20) return false;
            ++at;
        }
        if (at >= end) return false;
        *out = std::string_view(start, static_cast<size_t>(at - start));
        ++at;
        return true;
    }
};

// One record into ``row`` (its width doubles); false when it is not exactly the columns.
// Keys in signature order (the usual body) are matched in place; once one is not, the rest
// are looked up by name and repeats are refused.
bool read_record(Cursor& in, const Columns& columns, double* row, std::unique_ptr<char[]>& seen) {
    const Py_ssize_t width = static_cast<Py_ssize_t>(columns.names.size());
    if (!in.take('{')) return false;
    in.skip_space();
    if (in.take('}')) return width == 0;
    Py_ssize_t count = 0;
    bool in_order = true;
    for (;;) {
        Py_ssize_t position;
        if (in_order && count < width && in.key_is(columns.names[count])) {
            position = count;
        } else {
            std::string_view name;
            if (!in.key(&name)) return false;
            auto found = columns.index.find(name);
            if (found == columns.index.end()) return false;
            position = found->second;
            if (in_order) {  // the keys so far were 0 .. count - 1
                in_order = false;
                if (!seen) seen.reset(new (std::nothrow) char[static_cast<size_t>(width)]);
                if (!seen) return false;  // no memory: the checked path decides
                std::memset(seen.get(), 0, static_cast<size_t>(width));
                std::memset(seen.get(), 1, static_cast<size_t>(count));
            }
            if (seen[position]) return false;  // a repeated column: the checked path decides
            seen[position] = 1;
        }
        ++count;
        in.skip_space();
        if (!in.take(':')) return false;
        in.skip_space();
        if (!in.number(&row[position])) return false;
        in.skip_space();
        if (in.take('}')) break;
        if (!in.take(',')) return false;
        in.skip_space();
    }
    return count == width;
}

// make(names: list[str]) -> capsule: the columns, made once per served model.
PyObject* make_columns(PyObject* names);

PyObject* make(PyObject*, PyObject* names) {
    try {  // no C++ exception may cross into Python
        return make_columns(names);
    } catch (const std::bad_alloc&) {
        return PyErr_NoMemory();
    }
}

PyObject* make_columns(PyObject* names) {
    if (!PyList_Check(names)) {
        PyErr_SetString(PyExc_TypeError, "make() takes a list of column names");
        return nullptr;
    }
    auto columns = std::make_unique<Columns>();
    const Py_ssize_t size = PyList_GET_SIZE(names);
    columns->names.reserve(static_cast<size_t>(size));
    for (Py_ssize_t i = 0; i < size; ++i) {
        Py_ssize_t length;
        const char* text = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(names, i), &length);
        if (text == nullptr) return nullptr;
        for (Py_ssize_t j = 0; j < length; ++j) {
            const unsigned char c = static_cast<unsigned char>(text[j]);
            if (c == '"' || c == '\\' || c < 0x20) {  // JSON writes these escaped: msgspec's
                PyErr_SetString(PyExc_ValueError,
                                "a column name with a quote, a backslash or a control character");
                return nullptr;
            }
        }
        columns->names.emplace_back(text, static_cast<size_t>(length));
    }
    for (Py_ssize_t i = 0; i < size; ++i) {  // views into the strings, which no longer move
        if (!columns->index.emplace(columns->names[i], i).second) {
            PyErr_SetString(PyExc_ValueError, "make() takes distinct column names");
            return nullptr;
        }
    }
    PyObject* capsule = PyCapsule_New(columns.get(), kCapsule, free_columns);
    if (capsule != nullptr) columns.release();  // the capsule owns it now
    return capsule;
}

// decode(columns, body: bytes, max_rows: int) -> list[bytes] | None: each record's doubles,
// packed in signature order (8 bytes each, native order), or None (see the top).
PyObject* decode(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "decode(columns, body: bytes, max_rows: int)");
        return nullptr;
    }
    auto* columns = static_cast<Columns*>(PyCapsule_GetPointer(args[0], kCapsule));
    if (columns == nullptr) return nullptr;
    const Py_ssize_t max_rows = PyLong_AsSsize_t(args[2]);
    if (max_rows == -1 && PyErr_Occurred()) return nullptr;
    const Py_ssize_t width = static_cast<Py_ssize_t>(columns->names.size());
    Cursor in{PyBytes_AS_STRING(args[1]), PyBytes_AS_STRING(args[1]) + PyBytes_GET_SIZE(args[1])};
    std::unique_ptr<char[]> seen;  // made for the first record whose keys are out of order
    PyObject* rows = PyList_New(0);
    if (rows == nullptr) return nullptr;
    in.skip_space();
    bool ok = in.take('[');
    in.skip_space();
    if (ok && in.at < in.end && *in.at == ']') ok = false;  // an empty list: the checked 422
    while (ok) {
        if (PyList_GET_SIZE(rows) >= max_rows) {
            ok = false;
            break;
        }
        PyObject* row = PyBytes_FromStringAndSize(nullptr, width * static_cast<Py_ssize_t>(sizeof(double)));
        if (row == nullptr) {
            Py_DECREF(rows);
            return nullptr;
        }
        auto* values = reinterpret_cast<double*>(PyBytes_AS_STRING(row));
        ok = read_record(in, *columns, values, seen);
        if (ok && PyList_Append(rows, row) != 0) {
            Py_DECREF(row);
            Py_DECREF(rows);
            return nullptr;
        }
        Py_DECREF(row);
        if (!ok) break;
        in.skip_space();
        if (in.take(']')) break;
        ok = in.take(',');
        in.skip_space();
    }
    if (ok) {
        in.skip_space();
        ok = in.at == in.end;  // nothing after the list
    }
    if (!ok) {
        Py_DECREF(rows);
        Py_RETURN_NONE;
    }
    return rows;
}

PyMethodDef methods[] = {
    {"make", reinterpret_cast<PyCFunction>(make), METH_O,
     "make(names: list[str]) -> columns: the columns a decoder reads, in signature order."},
    {"decode", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(decode)),
     METH_FASTCALL,
     "decode(columns, body: bytes, max_rows: int) -> list[bytes] | None: each record's "
     "doubles packed in signature order, or None for any body not exactly that."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_records",
    "The usual /predict body of an all-float model read into packed rows of doubles.", -1,
    methods, nullptr, nullptr, nullptr, nullptr,
};

}  // namespace

PyMODINIT_FUNC PyInit__records() { return PyModule_Create(&module); }
