import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

/** Jetty 12 (ee10 servlets) with its default URI compliance and EchoServlet at "/*". Usage: JettyEcho [port]. */
public final class JettyEcho {
  public static void main(String[] args) throws Exception {
    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost("127.0.0.1");
    connector.setPort(EchoLog.port(args));
    server.addConnector(connector);
    ServletContextHandler ctx = new ServletContextHandler("/");
    ctx.addServlet(new ServletHolder(new EchoServlet()), "/*");
    server.setHandler(ctx);
    server.start();
    EchoLog.listening(connector.getLocalPort());
    server.join();
  }
}
