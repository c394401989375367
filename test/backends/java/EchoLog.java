import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** The line protocol every echo server speaks on stdout: "listening PORT", then one JSON line per request it handled. */
public final class EchoLog {
  private static final PrintStream OUT = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);

  private EchoLog() {}

  public static void listening(int port) {
    OUT.println("listening " + port);
  }

  public static synchronized void seen(String host, String path) {
    OUT.println("{\"host\":" + json(host) + ",\"path\":" + json(path) + "}");
  }

  /** A JSON string literal in plain ASCII: everything outside 0x20-0x7e is a \\u escape, so no charset can mangle it. */
  public static String json(String s) {
    StringBuilder b = new StringBuilder(s.length() + 2).append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c >= 0x20 && c <= 0x7e) b.append(c);
      else b.append(String.format("\\u%04x", (int) c));
    }
    return b.append('"').toString();
  }

  /** The port argument: absent or 0 picks a free one. */
  public static int port(String[] args) {
    return args.length > 0 ? Integer.parseInt(args[0]) : 0;
  }
}
