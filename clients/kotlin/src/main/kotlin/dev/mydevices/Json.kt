package dev.mydevices

/**
 * A small JSON reader and writer, so the core has no dependency an app must reconcile with its own
 * (kotlinx.serialization needs a compiler plugin and its runtime, Moshi/Gson reflection or codegen).
 * The API's answers are small objects; values are Map<String, Any?>, List<Any?>, String, Long,
 * Double, Boolean or null. Strict: trailing data, bad escapes and lone surrogates are errors.
 */
object Json {
    class ParseException(message: String) : IllegalArgumentException(message)

    fun parse(text: String): Any? {
        val reader = Reader(text)
        reader.space()
        val value = reader.value(0)
        reader.space()
        if (reader.at < text.length) throw ParseException("trailing data at ${reader.at}")
        return value
    }

    fun parseObject(text: String): Map<String, Any?> =
        parse(text) as? Map<String, Any?> ?: throw ParseException("not a JSON object")

    fun stringify(value: Any?): String = StringBuilder().also { write(it, value) }.toString()

    private fun write(out: StringBuilder, value: Any?) {
        when (value) {
            null -> out.append("null")
            is String -> quote(out, value)
            is Boolean -> out.append(value)
            is Int, is Long -> out.append(value.toString())
            is Double -> {
                require(value.isFinite()) { "JSON has no $value" }
                out.append(if (value % 1.0 == 0.0 && kotlin.math.abs(value) < 1e15) value.toLong().toString() else value.toString())
            }
            is Map<*, *> -> {
                out.append('{')
                var first = true
                for ((k, v) in value) {
                    if (!first) out.append(',')
                    first = false
                    quote(out, k as String)
                    out.append(':')
                    write(out, v)
                }
                out.append('}')
            }
            is Iterable<*> -> {
                out.append('[')
                value.forEachIndexed { i, v -> if (i > 0) out.append(','); write(out, v) }
                out.append(']')
            }
            else -> throw IllegalArgumentException("cannot write ${value::class} as JSON")
        }
    }

    private fun quote(out: StringBuilder, s: String) {
        out.append('"')
        for (c in s) {
            when {
                c == '"' -> out.append("\\\"")
                c == '\\' -> out.append("\\\\")
                c == '\n' -> out.append("\\n")
                c == '\r' -> out.append("\\r")
                c == '\t' -> out.append("\\t")
                c < ' ' || c == '\u2028' || c == '\u2029' -> out.append("\\u%04x".format(c.code))
                else -> out.append(c)
            }
        }
        out.append('"')
    }

    private class Reader(val s: String) {
        var at = 0

        fun space() {
            while (at < s.length && (s[at] == ' ' || s[at] == '\n' || s[at] == '\r' || s[at] == '\t')) at++
        }

        fun fail(what: String): Nothing = throw ParseException("$what at $at")

        fun value(depth: Int): Any? {
            if (depth > 64) fail("too deep")
            if (at >= s.length) fail("unexpected end")
            return when (s[at]) {
                '{' -> obj(depth)
                '[' -> arr(depth)
                '"' -> str()
                't' -> word("true", true)
                'f' -> word("false", false)
                'n' -> word("null", null)
                else -> num()
            }
        }

        fun word(w: String, v: Any?): Any? {
            if (!s.startsWith(w, at)) fail("unexpected character")
            at += w.length
            return v
        }

        fun obj(depth: Int): Map<String, Any?> {
            val map = LinkedHashMap<String, Any?>()
            at++
            space()
            if (at < s.length && s[at] == '}') { at++; return map }
            while (true) {
                space()
                if (at >= s.length || s[at] != '"') fail("expected a key")
                val key = str()
                space()
                if (at >= s.length || s[at] != ':') fail("expected ':'")
                at++
                space()
                map[key] = value(depth + 1)
                space()
                if (at >= s.length) fail("unexpected end")
                when (s[at++]) {
                    ',' -> continue
                    '}' -> return map
                    else -> fail("expected ',' or '}'")
                }
            }
        }

        fun arr(depth: Int): List<Any?> {
            val list = ArrayList<Any?>()
            at++
            space()
            if (at < s.length && s[at] == ']') { at++; return list }
            while (true) {
                space()
                list.add(value(depth + 1))
                space()
                if (at >= s.length) fail("unexpected end")
                when (s[at++]) {
                    ',' -> continue
                    ']' -> return list
                    else -> fail("expected ',' or ']'")
                }
            }
        }

        fun str(): String {
            val out = StringBuilder()
            at++
            while (true) {
                if (at >= s.length) fail("unterminated string")
                val c = s[at++]
                when {
                    c == '"' -> break
                    c == '\\' -> {
                        if (at >= s.length) fail("bad escape")
                        when (val e = s[at++]) {
                            '"', '\\', '/' -> out.append(e)
                            'b' -> out.append('\b')
                            'f' -> out.append('\u000c')
                            'n' -> out.append('\n')
                            'r' -> out.append('\r')
                            't' -> out.append('\t')
                            'u' -> {
                                if (at + 4 > s.length) fail("bad \\u escape")
                                val code = s.substring(at, at + 4).toIntOrNull(16) ?: fail("bad \\u escape")
                                at += 4
                                out.append(code.toChar())
                            }
                            else -> fail("bad escape")
                        }
                    }
                    c < ' ' -> fail("control character in string")
                    else -> out.append(c)
                }
            }
            val text = out.toString()
            for (i in text.indices) {
                val c = text[i]
                if (c.isHighSurrogate() && (i + 1 >= text.length || !text[i + 1].isLowSurrogate())) fail("lone surrogate")
                if (c.isLowSurrogate() && (i == 0 || !text[i - 1].isHighSurrogate())) fail("lone surrogate")
            }
            return text
        }

        fun num(): Any {
            val start = at
            if (at < s.length && s[at] == '-') at++
            while (at < s.length && (s[at].isDigit() || s[at] in ".eE+-")) at++
            val text = s.substring(start, at)
            if (!Regex("-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?").matches(text)) {
                at = start
                fail("bad number or unexpected character")
            }
            return if (text.any { it in ".eE" }) text.toDouble() else text.toLongOrNull() ?: text.toDouble()
        }
    }
}

// Typed reads of parsed JSON, for the models.
internal fun Map<String, Any?>.str(key: String): String? = this[key] as? String
internal fun Map<String, Any?>.long(key: String): Long? = when (val v = this[key]) {
    is Long -> v
    is Double -> if (v % 1.0 == 0.0) v.toLong() else null
    else -> null
}
internal fun Map<String, Any?>.bool(key: String): Boolean? = this[key] as? Boolean
@Suppress("UNCHECKED_CAST")
internal fun Map<String, Any?>.obj(key: String): Map<String, Any?>? = this[key] as? Map<String, Any?>
internal fun Map<String, Any?>.list(key: String): List<Any?>? = this[key] as? List<Any?>
