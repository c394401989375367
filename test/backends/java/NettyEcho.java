import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.QueryStringDecoder;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;

/**
 * Netty's HTTP codec with the routing TorchServe uses: its HttpRequestHandler
 * takes {@code new QueryStringDecoder(req.uri()).path()} (percent-decoded,
 * nothing resolved or merged) and splits it on "/". Usage: NettyEcho [port].
 */
public final class NettyEcho {
  static final class Echo extends SimpleChannelInboundHandler<FullHttpRequest> {
    @Override
    protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
      if (!req.decoderResult().isSuccess()) {
        reply(ctx, req, HttpResponseStatus.BAD_REQUEST, "{\"error\":\"invalid HTTP message\"}");
        return;
      }
      String path;
      try {
        path = new QueryStringDecoder(req.uri()).path();
      } catch (IllegalArgumentException e) {
        reply(ctx, req, HttpResponseStatus.BAD_REQUEST, "{\"error\":" + EchoLog.json(String.valueOf(e.getMessage())) + "}");
        return;
      }
      String host = req.headers().get(HttpHeaderNames.HOST);
      EchoLog.seen(host == null ? "" : host, path);
      reply(ctx, req, HttpResponseStatus.OK, "{\"path\":" + EchoLog.json(path) + "}");
    }

    private static void reply(ChannelHandlerContext ctx, FullHttpRequest req, HttpResponseStatus status, String json) {
      FullHttpResponse res = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, Unpooled.copiedBuffer(json, StandardCharsets.UTF_8));
      res.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/json");
      HttpUtil.setContentLength(res, res.content().readableBytes());
      boolean keepAlive = HttpUtil.isKeepAlive(req) && req.decoderResult().isSuccess();
      HttpUtil.setKeepAlive(res, keepAlive);
      var done = ctx.writeAndFlush(res);
      if (!keepAlive) done.addListener(ChannelFutureListener.CLOSE);
    }
  }

  public static void main(String[] args) throws Exception {
    var group = new MultiThreadIoEventLoopGroup(NioIoHandler.newFactory());
    ServerBootstrap b = new ServerBootstrap()
        .group(group)
        .channel(NioServerSocketChannel.class)
        .childHandler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            ch.pipeline().addLast(new HttpServerCodec(), new HttpObjectAggregator(1 << 20), new Echo());
          }
        });
    Channel ch = b.bind("127.0.0.1", EchoLog.port(args)).sync().channel();
    EchoLog.listening(((InetSocketAddress) ch.localAddress()).getPort());
    ch.closeFuture().sync();
  }
}
