package dev.mydevices

import java.io.IOException
import java.net.HttpURLConnection
import java.net.URL
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

class HttpRequest(val method: String, val url: String, val headers: Map<String, String>, val body: String?)

/** An answer; header names are lower case. */
class HttpResponse(val status: Int, val headers: Map<String, String>, val body: String) {
    fun header(name: String): String? = headers[name.lowercase()]
}

/** Sends one request. Throws [IOException] when there is no answer (no network, a lost answer). */
fun interface HttpTransport {
    suspend fun send(request: HttpRequest): HttpResponse
}

/**
 * HttpURLConnection on Dispatchers.IO: the one HTTP client both the JVM and Android have
 * (java.net.http is not on Android). An app with OkHttp can pass its own [HttpTransport].
 */
class UrlConnectionTransport(
    private val connectTimeoutMillis: Int = 15_000,
    private val readTimeoutMillis: Int = 30_000,
) : HttpTransport {
    override suspend fun send(request: HttpRequest): HttpResponse = withContext(Dispatchers.IO) {
        val connection = URL(request.url).openConnection() as HttpURLConnection
        try {
            connection.requestMethod = request.method
            connection.connectTimeout = connectTimeoutMillis
            connection.readTimeout = readTimeoutMillis
            connection.useCaches = false
            connection.instanceFollowRedirects = false
            request.headers.forEach(connection::setRequestProperty)
            if (request.body != null) {
                connection.doOutput = true
                // Buffered, not setFixedLengthStreamingMode: in streaming mode a 401 answer's body is lost
                // (errorStream is null), and with it the error code (seen against the local stack).
                connection.outputStream.use { it.write(request.body.toByteArray(Charsets.UTF_8)) }
            }
            val status = connection.responseCode
            val stream = if (status >= 400) connection.errorStream else connection.inputStream
            val body = stream?.use { it.readBytes().toString(Charsets.UTF_8) } ?: ""
            val headers = connection.headerFields.entries
                .filter { it.key != null && it.value.isNotEmpty() }
                .associate { it.key.lowercase() to it.value.last() }
            HttpResponse(status, headers, body)
        } finally {
            connection.disconnect()
        }
    }
}
