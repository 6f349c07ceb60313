/* The Unicode side of CLIP's tokenizer: strict UTF-8, the cleaning CLIP applies before
 * splitting (Python's html.unescape twice, str.isspace whitespace handling, str.lower) and the
 * character classes of its split pattern. Written to reproduce the Python reference, which is
 * where the token ids of the fixtures come from. */
#include "clip/unicode.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

int insp_utf8_decode(const char *s, size_t len, uint32_t *cps, size_t *n, insp_error *err)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, k = 0;
    while (i < len) {
        unsigned b = p[i];
        if (b < 0x80) {
            cps[k++] = b;
            i++;
            continue;
        }
        int extra;
        uint32_t cp, min;
        if (b >= 0xC0 && b <= 0xDF) {
            extra = 1, cp = b & 0x1F, min = 0x80;
        } else if (b >= 0xE0 && b <= 0xEF) {
            extra = 2, cp = b & 0x0F, min = 0x800;
        } else if (b >= 0xF0 && b <= 0xF7) {
            extra = 3, cp = b & 0x07, min = 0x10000;
        } else if (b >= 0x80 && b <= 0xBF) {
            return insp_error_set(err, INSP_ERR_FORMAT,
                                  "text is not valid UTF-8: stray continuation byte 0x%02X at "
                                  "byte %zu", b, i);
        } else {
            return insp_error_set(err, INSP_ERR_FORMAT,
                                  "text is not valid UTF-8: byte 0x%02X at byte %zu never "
                                  "occurs in UTF-8", b, i);
        }
        for (int j = 1; j <= extra; j++) {
            if (i + (size_t)j >= len || (p[i + j] & 0xC0) != 0x80)
                return insp_error_set(err, INSP_ERR_FORMAT,
                                      "text is not valid UTF-8: truncated %d-byte sequence at "
                                      "byte %zu", extra + 1, i);
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        if (cp < min)
            return insp_error_set(err, INSP_ERR_FORMAT,
                                  "text is not valid UTF-8: overlong encoding of U+%04X at byte "
                                  "%zu", (unsigned)cp, i);
        if (cp >= 0xD800 && cp <= 0xDFFF)
            return insp_error_set(err, INSP_ERR_FORMAT,
                                  "text is not valid UTF-8: surrogate U+%04X at byte %zu",
                                  (unsigned)cp, i);
        if (cp > 0x10FFFF)
            return insp_error_set(err, INSP_ERR_FORMAT,
                                  "text is not valid UTF-8: value 0x%X above U+10FFFF at byte "
                                  "%zu", (unsigned)cp, i);
        cps[k++] = cp;
        i += (size_t)extra + 1;
    }
    *n = k;
    return INSP_OK;
}

int insp_utf8_encode(uint32_t cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

bool insp_uc_is_space(uint32_t c)
{
    // Python's str.isspace(): bidi classes WS, B, S and category Zs. Unlike Unicode's
    // White_Space it includes U+001C..U+001F.
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

static int category(uint32_t c)
{
    return c <= 0x10FFFF ? utf8proc_category((utf8proc_int32_t)c) : UTF8PROC_CATEGORY_CN;
}

bool insp_uc_is_letter(uint32_t c)
{
    int k = category(c);
    return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT ||
           k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_LO;
}

bool insp_uc_is_number(uint32_t c)
{
    int k = category(c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

/* ---- html.unescape ------------------------------------------------------------------- */

typedef struct entity {
    const char *name;
    uint32_t cp;
    bool legacy; /* also recognised without the ';' (and as a prefix), as HTML 5 says */
} entity;

// HTML 4's 252 names with their HTML 5 values (&lang; and &rang; moved to U+27E8/U+27E9), plus
// &apos; and the upper-case legacy aliases. Sorted by strcmp for bsearch.
static const entity entities[] = {
    {"AElig", 0x00C6, 1}, {"AMP", 0x0026, 1}, {"Aacute", 0x00C1, 1},
    {"Acirc", 0x00C2, 1}, {"Agrave", 0x00C0, 1}, {"Alpha", 0x0391, 0},
    {"Aring", 0x00C5, 1}, {"Atilde", 0x00C3, 1}, {"Auml", 0x00C4, 1},
    {"Beta", 0x0392, 0}, {"COPY", 0x00A9, 1}, {"Ccedil", 0x00C7, 1},
    {"Chi", 0x03A7, 0}, {"Dagger", 0x2021, 0}, {"Delta", 0x0394, 0},
    {"ETH", 0x00D0, 1}, {"Eacute", 0x00C9, 1}, {"Ecirc", 0x00CA, 1},
    {"Egrave", 0x00C8, 1}, {"Epsilon", 0x0395, 0}, {"Eta", 0x0397, 0},
    {"Euml", 0x00CB, 1}, {"GT", 0x003E, 1}, {"Gamma", 0x0393, 0},
    {"Iacute", 0x00CD, 1}, {"Icirc", 0x00CE, 1}, {"Igrave", 0x00CC, 1},
    {"Iota", 0x0399, 0}, {"Iuml", 0x00CF, 1}, {"Kappa", 0x039A, 0},
    {"LT", 0x003C, 1}, {"Lambda", 0x039B, 0}, {"Mu", 0x039C, 0},
    {"Ntilde", 0x00D1, 1}, {"Nu", 0x039D, 0}, {"OElig", 0x0152, 0},
    {"Oacute", 0x00D3, 1}, {"Ocirc", 0x00D4, 1}, {"Ograve", 0x00D2, 1},
    {"Omega", 0x03A9, 0}, {"Omicron", 0x039F, 0}, {"Oslash", 0x00D8, 1},
    {"Otilde", 0x00D5, 1}, {"Ouml", 0x00D6, 1}, {"Phi", 0x03A6, 0},
    {"Pi", 0x03A0, 0}, {"Prime", 0x2033, 0}, {"Psi", 0x03A8, 0},
    {"QUOT", 0x0022, 1}, {"REG", 0x00AE, 1}, {"Rho", 0x03A1, 0},
    {"Scaron", 0x0160, 0}, {"Sigma", 0x03A3, 0}, {"THORN", 0x00DE, 1},
    {"Tau", 0x03A4, 0}, {"Theta", 0x0398, 0}, {"Uacute", 0x00DA, 1},
    {"Ucirc", 0x00DB, 1}, {"Ugrave", 0x00D9, 1}, {"Upsilon", 0x03A5, 0},
    {"Uuml", 0x00DC, 1}, {"Xi", 0x039E, 0}, {"Yacute", 0x00DD, 1},
    {"Yuml", 0x0178, 0}, {"Zeta", 0x0396, 0}, {"aacute", 0x00E1, 1},
    {"acirc", 0x00E2, 1}, {"acute", 0x00B4, 1}, {"aelig", 0x00E6, 1},
    {"agrave", 0x00E0, 1}, {"alefsym", 0x2135, 0}, {"alpha", 0x03B1, 0},
    {"amp", 0x0026, 1}, {"and", 0x2227, 0}, {"ang", 0x2220, 0},
    {"apos", 0x0027, 0}, {"aring", 0x00E5, 1}, {"asymp", 0x2248, 0},
    {"atilde", 0x00E3, 1}, {"auml", 0x00E4, 1}, {"bdquo", 0x201E, 0},
    {"beta", 0x03B2, 0}, {"brvbar", 0x00A6, 1}, {"bull", 0x2022, 0},
    {"cap", 0x2229, 0}, {"ccedil", 0x00E7, 1}, {"cedil", 0x00B8, 1},
    {"cent", 0x00A2, 1}, {"chi", 0x03C7, 0}, {"circ", 0x02C6, 0},
    {"clubs", 0x2663, 0}, {"cong", 0x2245, 0}, {"copy", 0x00A9, 1},
    {"crarr", 0x21B5, 0}, {"cup", 0x222A, 0}, {"curren", 0x00A4, 1},
    {"dArr", 0x21D3, 0}, {"dagger", 0x2020, 0}, {"darr", 0x2193, 0},
    {"deg", 0x00B0, 1}, {"delta", 0x03B4, 0}, {"diams", 0x2666, 0},
    {"divide", 0x00F7, 1}, {"eacute", 0x00E9, 1}, {"ecirc", 0x00EA, 1},
    {"egrave", 0x00E8, 1}, {"empty", 0x2205, 0}, {"emsp", 0x2003, 0},
    {"ensp", 0x2002, 0}, {"epsilon", 0x03B5, 0}, {"equiv", 0x2261, 0},
    {"eta", 0x03B7, 0}, {"eth", 0x00F0, 1}, {"euml", 0x00EB, 1},
    {"euro", 0x20AC, 0}, {"exist", 0x2203, 0}, {"fnof", 0x0192, 0},
    {"forall", 0x2200, 0}, {"frac12", 0x00BD, 1}, {"frac14", 0x00BC, 1},
    {"frac34", 0x00BE, 1}, {"frasl", 0x2044, 0}, {"gamma", 0x03B3, 0},
    {"ge", 0x2265, 0}, {"gt", 0x003E, 1}, {"hArr", 0x21D4, 0},
    {"harr", 0x2194, 0}, {"hearts", 0x2665, 0}, {"hellip", 0x2026, 0},
    {"iacute", 0x00ED, 1}, {"icirc", 0x00EE, 1}, {"iexcl", 0x00A1, 1},
    {"igrave", 0x00EC, 1}, {"image", 0x2111, 0}, {"infin", 0x221E, 0},
    {"int", 0x222B, 0}, {"iota", 0x03B9, 0}, {"iquest", 0x00BF, 1},
    {"isin", 0x2208, 0}, {"iuml", 0x00EF, 1}, {"kappa", 0x03BA, 0},
    {"lArr", 0x21D0, 0}, {"lambda", 0x03BB, 0}, {"lang", 0x27E8, 0},
    {"laquo", 0x00AB, 1}, {"larr", 0x2190, 0}, {"lceil", 0x2308, 0},
    {"ldquo", 0x201C, 0}, {"le", 0x2264, 0}, {"lfloor", 0x230A, 0},
    {"lowast", 0x2217, 0}, {"loz", 0x25CA, 0}, {"lrm", 0x200E, 0},
    {"lsaquo", 0x2039, 0}, {"lsquo", 0x2018, 0}, {"lt", 0x003C, 1},
    {"macr", 0x00AF, 1}, {"mdash", 0x2014, 0}, {"micro", 0x00B5, 1},
    {"middot", 0x00B7, 1}, {"minus", 0x2212, 0}, {"mu", 0x03BC, 0},
    {"nabla", 0x2207, 0}, {"nbsp", 0x00A0, 1}, {"ndash", 0x2013, 0},
    {"ne", 0x2260, 0}, {"ni", 0x220B, 0}, {"not", 0x00AC, 1},
    {"notin", 0x2209, 0}, {"nsub", 0x2284, 0}, {"ntilde", 0x00F1, 1},
    {"nu", 0x03BD, 0}, {"oacute", 0x00F3, 1}, {"ocirc", 0x00F4, 1},
    {"oelig", 0x0153, 0}, {"ograve", 0x00F2, 1}, {"oline", 0x203E, 0},
    {"omega", 0x03C9, 0}, {"omicron", 0x03BF, 0}, {"oplus", 0x2295, 0},
    {"or", 0x2228, 0}, {"ordf", 0x00AA, 1}, {"ordm", 0x00BA, 1},
    {"oslash", 0x00F8, 1}, {"otilde", 0x00F5, 1}, {"otimes", 0x2297, 0},
    {"ouml", 0x00F6, 1}, {"para", 0x00B6, 1}, {"part", 0x2202, 0},
    {"permil", 0x2030, 0}, {"perp", 0x22A5, 0}, {"phi", 0x03C6, 0},
    {"pi", 0x03C0, 0}, {"piv", 0x03D6, 0}, {"plusmn", 0x00B1, 1},
    {"pound", 0x00A3, 1}, {"prime", 0x2032, 0}, {"prod", 0x220F, 0},
    {"prop", 0x221D, 0}, {"psi", 0x03C8, 0}, {"quot", 0x0022, 1},
    {"rArr", 0x21D2, 0}, {"radic", 0x221A, 0}, {"rang", 0x27E9, 0},
    {"raquo", 0x00BB, 1}, {"rarr", 0x2192, 0}, {"rceil", 0x2309, 0},
    {"rdquo", 0x201D, 0}, {"real", 0x211C, 0}, {"reg", 0x00AE, 1},
    {"rfloor", 0x230B, 0}, {"rho", 0x03C1, 0}, {"rlm", 0x200F, 0},
    {"rsaquo", 0x203A, 0}, {"rsquo", 0x2019, 0}, {"sbquo", 0x201A, 0},
    {"scaron", 0x0161, 0}, {"sdot", 0x22C5, 0}, {"sect", 0x00A7, 1},
    {"shy", 0x00AD, 1}, {"sigma", 0x03C3, 0}, {"sigmaf", 0x03C2, 0},
    {"sim", 0x223C, 0}, {"spades", 0x2660, 0}, {"sub", 0x2282, 0},
    {"sube", 0x2286, 0}, {"sum", 0x2211, 0}, {"sup", 0x2283, 0},
    {"sup1", 0x00B9, 1}, {"sup2", 0x00B2, 1}, {"sup3", 0x00B3, 1},
    {"supe", 0x2287, 0}, {"szlig", 0x00DF, 1}, {"tau", 0x03C4, 0},
    {"there4", 0x2234, 0}, {"theta", 0x03B8, 0}, {"thetasym", 0x03D1, 0},
    {"thinsp", 0x2009, 0}, {"thorn", 0x00FE, 1}, {"tilde", 0x02DC, 0},
    {"times", 0x00D7, 1}, {"trade", 0x2122, 0}, {"uArr", 0x21D1, 0},
    {"uacute", 0x00FA, 1}, {"uarr", 0x2191, 0}, {"ucirc", 0x00FB, 1},
    {"ugrave", 0x00F9, 1}, {"uml", 0x00A8, 1}, {"upsih", 0x03D2, 0},
    {"upsilon", 0x03C5, 0}, {"uuml", 0x00FC, 1}, {"weierp", 0x2118, 0},
    {"xi", 0x03BE, 0}, {"yacute", 0x00FD, 1}, {"yen", 0x00A5, 1},
    {"yuml", 0x00FF, 1}, {"zeta", 0x03B6, 0}, {"zwj", 0x200D, 0},
    {"zwnj", 0x200C, 0},
};

/* The entity named by name[len] (ASCII compared code point by code point), or NULL. */
static const entity *find_entity(const uint32_t *name, size_t len)
{
    size_t lo = 0, hi = sizeof entities / sizeof entities[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const unsigned char *e = (const unsigned char *)entities[mid].name;
        int cmp = 0;
        size_t i = 0;
        for (; i < len && e[i]; i++) {
            if (name[i] != e[i]) {
                cmp = name[i] < e[i] ? -1 : 1;
                break;
            }
        }
        if (cmp == 0)
            cmp = i < len ? 1 : (e[i] ? -1 : 0);
        if (cmp == 0)
            return &entities[mid];
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static bool is_digit(uint32_t c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(uint32_t c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

/* Python's numeric character reference rules; returns false when the reference expands to
 * nothing (a non-character or control code). */
static bool charref_value(uint32_t num, uint32_t *cp)
{
    // Windows-1252 readings of 0x80..0x9F (0 = the code point itself), as Python's
    // html._invalid_charrefs.
    static const uint16_t cp1252[32] = {
        0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
        0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
        0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
        0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
    };
    if (num == 0) {
        *cp = 0xFFFD;
        return true;
    }
    if (num == 0x0D) {
        *cp = num;
        return true;
    }
    if (num >= 0x80 && num <= 0x9F) {
        *cp = cp1252[num - 0x80] ? cp1252[num - 0x80] : num;
        return true;
    }
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
        *cp = 0xFFFD;
        return true;
    }
    if ((num >= 0x01 && num <= 0x08) || num == 0x0B || (num >= 0x0E && num <= 0x1F) ||
        num == 0x7F || (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE)
        return false;
    *cp = num;
    return true;
}

/* Length of Python's `[^\t\n\f <&#;]{1,32}` at s[0..n). */
static size_t name_run(const uint32_t *s, size_t n)
{
    size_t k = 0;
    while (k < n && k < 32) {
        uint32_t c = s[k];
        if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' ||
            c == '#' || c == ';')
            break;
        k++;
    }
    return k;
}

size_t insp_html_unescape(const uint32_t *in, size_t n, uint32_t *out)
{
    size_t i = 0, o = 0;
    while (i < n) {
        if (in[i] != '&') {
            out[o++] = in[i++];
            continue;
        }
        const uint32_t *s = in + i + 1;
        size_t rest = n - i - 1;
        if (rest >= 2 && s[0] == '#' &&
            (is_digit(s[1]) || ((s[1] == 'x' || s[1] == 'X') && rest >= 3 && hex_value(s[2]) >= 0))) {
            // &#NNN;? or &#xHHH;? — the ';' is optional; huge values saturate (they all
            // become U+FFFD like Python's big integers above U+10FFFF).
            bool hex = !is_digit(s[1]);
            size_t k = hex ? 2 : 1;
            uint32_t num = 0;
            for (; k < rest; k++) {
                int d = hex ? hex_value(s[k]) : (is_digit(s[k]) ? (int)(s[k] - '0') : -1);
                if (d < 0)
                    break;
                num = num > 0x10FFFF ? num : num * (hex ? 16u : 10u) + (uint32_t)d;
            }
            if (k < rest && s[k] == ';')
                k++;
            uint32_t cp;
            if (charref_value(num, &cp))
                out[o++] = cp;
            i += 1 + k;
            continue;
        }
        size_t k = name_run(s, rest);
        if (k == 0) {
            out[o++] = in[i++];
            continue;
        }
        bool semi = k < rest && s[k] == ';';
        const entity *e = find_entity(s, k);
        if (e && (semi || e->legacy)) {
            out[o++] = e->cp;
            i += 1 + k + (semi ? 1 : 0);
            continue;
        }
        // Python tries the longest prefix of length 2.. len(s)-1 (s counting the ';') that is
        // a name valid without its ';' and keeps what follows as text.
        size_t slen = k + (semi ? 1 : 0);
        size_t x = slen - 1 < k ? slen - 1 : k;
        for (; x >= 2; x--) {
            e = find_entity(s, x);
            if (e && e->legacy)
                break;
        }
        if (x >= 2) {
            out[o++] = e->cp;
            i += 1 + x;
        } else {
            out[o++] = in[i++];
        }
    }
    return o;
}

/* ---- lower-casing ------------------------------------------------------------------- */

/* Unicode's Case_Ignorable, as Python's final-sigma rule reads it. */
static bool case_ignorable(uint32_t c)
{
    int k = category(c);
    if (k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
        k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK)
        return true;
    // Word_Break MidLetter, MidNumLet and Single_Quote.
    static const uint32_t mid[] = {0x27,   0x2E,   0x3A,   0xB7,   0x387,  0x55F,
                                   0x5F4,  0x2018, 0x2019, 0x2024, 0x2027, 0xFE13,
                                   0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};
    for (size_t i = 0; i < sizeof mid / sizeof mid[0]; i++)
        if (mid[i] == c)
            return true;
    return false;
}

/* Unicode's Cased: letters with a case, plus the Other_Lowercase / Other_Uppercase symbols
 * that have no case mapping of their own (ª, º, the squared and circled capitals). */
static bool cased(uint32_t c)
{
    int k = category(c);
    if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT)
        return true;
    if (c == 0xAA || c == 0xBA || (c >= 0x1F130 && c <= 0x1F149) ||
        (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189))
        return true;
    utf8proc_int32_t v = (utf8proc_int32_t)c;
    return utf8proc_tolower(v) != v || utf8proc_toupper(v) != v;
}

/* Σ at i ends a word (Python lowers it to ς): a cased letter before it and none after it,
 * looking past case-ignorable characters on both sides. */
static bool final_sigma(const uint32_t *s, size_t n, size_t i)
{
    size_t j = i;
    while (j > 0 && case_ignorable(s[j - 1]))
        j--;
    if (j == 0 || !cased(s[j - 1]))
        return false;
    for (j = i + 1; j < n && case_ignorable(s[j]); j++)
        ;
    return j == n || !cased(s[j]);
}

int insp_clip_clean(const uint32_t *cps, size_t n, uint32_t **out, size_t *n_out,
                    insp_error *err)
{
    // Unescaping never lengthens the text; lower-casing at most doubles it (İ → i + U+0307).
    uint32_t *a = malloc((n ? n : 1) * sizeof *a);
    uint32_t *b = malloc((2 * n + 1) * sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return insp_error_set(err, INSP_ERR_NOMEM, "tokenizer: no memory to clean %zu "
                              "characters of text", n);
    }
    size_t m = insp_html_unescape(cps, n, a);
    m = insp_html_unescape(a, m, b);

    // strip, whitespace runs to one space, strip
    size_t w = 0;
    bool pending_space = false;
    for (size_t i = 0; i < m; i++) {
        if (insp_uc_is_space(b[i])) {
            pending_space = w > 0;
            continue;
        }
        if (pending_space)
            a[w++] = ' ';
        pending_space = false;
        a[w++] = b[i];
    }

    size_t o = 0;
    for (size_t i = 0; i < w; i++) {
        uint32_t c = a[i];
        if (c == 0x130) {
            b[o++] = 'i';
            b[o++] = 0x307;
        } else if (c == 0x3A3) {
            b[o++] = final_sigma(a, w, i) ? 0x3C2 : 0x3C3;
        } else {
            b[o++] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
        }
    }
    free(a);
    *out = b;
    *n_out = o;
    return INSP_OK;
}
