// Starts the official DynamoDB Local with its HTTP listener bound to 127.0.0.1 only.
// DynamoDB Local has no bind-address option and listens on every interface; this launcher builds the
// server from the usual command-line arguments, then sets the host of its Jetty connectors before start.
// DYNAMODB_LOCAL_HOST names another address (only ever inside a network namespace of the test command's own).
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDBLocal {
    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        if (proxy == null) {
            System.exit(2);
        }
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        String host = System.getenv().getOrDefault("DYNAMODB_LOCAL_HOST", "127.0.0.1");
        for (Connector connector : server.getConnectors()) {
            if (connector instanceof ServerConnector) {
                ((ServerConnector) connector).setHost(host);
            }
        }
        proxy.start();
        System.out.println("DynamoDB Local listening on " + host);
        proxy.join();
    }
}
