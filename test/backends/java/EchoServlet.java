import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * Mapped at "/*": answers every request that reaches it with
 * {"path": servletPath + pathInfo}, the path Spring's UrlPathHelper (and any
 * servlet-mapping based router) routes on, after the container has decoded,
 * stripped ";params" and resolved dot segments. Tomcat and Jetty compile this
 * same file against their own servlet API.
 */
public final class EchoServlet extends HttpServlet {
  private static final long serialVersionUID = 1L;

  @Override
  protected void service(HttpServletRequest req, HttpServletResponse res) throws IOException {
    String info = req.getPathInfo();
    String path = req.getServletPath() + (info == null ? "" : info);
    String host = req.getHeader("Host");
    EchoLog.seen(host == null ? "" : host, path);
    byte[] body = ("{\"path\":" + EchoLog.json(path) + "}").getBytes(StandardCharsets.UTF_8);
    res.setStatus(200);
    res.setContentType("application/json");
    res.setContentLength(body.length);
    res.getOutputStream().write(body);
  }
}
