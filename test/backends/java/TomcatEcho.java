import java.nio.file.Files;
import org.apache.catalina.Context;
import org.apache.catalina.connector.Connector;
import org.apache.catalina.startup.Tomcat;

/** Embedded Tomcat with its default HTTP/1.1 connector settings and EchoServlet at "/*". Usage: TomcatEcho [port]. */
public final class TomcatEcho {
  public static void main(String[] args) throws Exception {
    Tomcat tomcat = new Tomcat();
    tomcat.setBaseDir(Files.createTempDirectory("infergate-tomcat-echo-").toString());
    Connector connector = new Connector();
    connector.setPort(EchoLog.port(args));
    connector.setProperty("address", "127.0.0.1");
    tomcat.setConnector(connector);
    Context ctx = tomcat.addContext("", null);
    Tomcat.addServlet(ctx, "echo", new EchoServlet()).addMapping("/*");
    tomcat.start();
    EchoLog.listening(connector.getLocalPort());
    tomcat.getServer().await();
  }
}
