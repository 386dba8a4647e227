using Npgsql;
using PgState.Engine.Diagnostics;
using PgState.Engine.Manifests;

namespace PgState.Engine.Host;

/// <summary>What modules get to read and change a host: one PostgreSQL connection and the process runner.</summary>
public interface IHostSession
{
    HostManifest Host { get; }

    NpgsqlConnection Connection { get; }

    ProcessRunner Processes { get; }

    ServerInfo Server { get; }

    Func<string, string?> Environment { get; }

    /// <summary>Risks the operator accepted on the command line (e.g. "lockout" for --allow-lockout).</summary>
    IReadOnlySet<string> Allowances { get; }

    /// <summary>A second connection, same server and credentials, to another database (e.g. a logical slot's).</summary>
    Task<NpgsqlConnection> OpenDatabaseAsync(string database, CancellationToken cancellationToken);
}

public sealed record ServerInfo(int VersionNum, string Version, string DataDirectory, bool IsSuperuser, string SessionUser);

/// <summary>Opens and owns the connection to one host; knows how to reload and restart the server.</summary>
public sealed class HostSession : IHostSession, IAsyncDisposable
{
    private NpgsqlConnection? _connection;
    private NpgsqlDataSource? _dataSource;

    private HostSession(HostManifest host, ProcessRunner processes, Func<string, string?> environment)
    {
        Host = host;
        Processes = processes;
        Environment = environment;
    }

    public HostManifest Host { get; private set; }

    public ProcessRunner Processes { get; }

    public Func<string, string?> Environment { get; }

    public ServerInfo Server { get; private set; } = null!;

    public IReadOnlySet<string> Allowances { get; set; } = new HashSet<string>();

    public NpgsqlConnection Connection => _connection ?? throw new InvalidOperationException("not connected");

    /// <summary>Opens a session for a connection before the manifest is fully checked (see HostWorkflow).</summary>
    public static async Task<HostSession> OpenAsync(ConnectionSpec connection, ProcessRunner processes, Func<string, string?> environment, CancellationToken cancellationToken)
    {
        var placeholder = new HostManifest(new ManifestDocument("", [], new SourcePosition("", 1, 1)), "", connection, null,
            new RestartSpec(RestartPolicy.Never, null, null, null, TimeSpan.FromSeconds(60)));
        return await OpenAsync(placeholder, processes, environment, cancellationToken);
    }

    /// <summary>Attaches the checked manifest to a session opened early for the same connection.</summary>
    public void Adopt(HostManifest host)
    {
        if (host.Connection != Host.Connection)
        {
            throw new InvalidOperationException("a session can only adopt a manifest for its own connection");
        }
        Host = host;
    }

    public static async Task<HostSession> OpenAsync(HostManifest host, ProcessRunner processes, Func<string, string?> environment, CancellationToken cancellationToken)
    {
        var session = new HostSession(host, processes, environment);
        await session.ConnectAsync(cancellationToken);
        return session;
    }

    private string ConnectionString()
    {
        var c = Host.Connection;
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = c.Host,
            Port = c.Port,
            Username = c.User,
            Database = c.Database,
            Timeout = c.ConnectTimeoutSeconds,
            Pooling = false,
            ApplicationName = "pgstate",
            // The password comes from the manifest's secret reference, else Npgsql's own
            // PGPASSWORD / .pgpass handling.
            Password = c.Password?.Resolve(Environment),
        };
        return builder.ConnectionString;
    }

    private async Task ConnectAsync(CancellationToken cancellationToken)
    {
        if (_dataSource is null)
        {
            // The slim builder with type loading off: pgstate reads only built-in types, so this
            // skips the pg_type round trip and most of Npgsql's start-up work.
            var builder = new NpgsqlSlimDataSourceBuilder(ConnectionString());
            builder.EnableArrays();
            builder.ConfigureTypeLoading(t => t.EnableTypeLoading(false));
            _dataSource = builder.Build();
        }
        _connection = _dataSource.CreateConnection();
        try
        {
            await _connection.OpenAsync(cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            await _connection.DisposeAsync();
            _connection = null;
            throw new PgStateException($"cannot connect to {Host.Connection.Describe()} for host '{Host.Name}': {Describe(e)}", e);
        }
        await using var cmd = new NpgsqlCommand(
            "select current_setting('server_version_num')::int, current_setting('server_version'), current_setting('data_directory', true), " +
            "(select rolsuper from pg_roles where rolname = session_user), session_user::text", _connection);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        Server = new ServerInfo(reader.GetInt32(0), reader.GetString(1), reader.IsDBNull(2) ? "" : reader.GetString(2), reader.GetBoolean(3), reader.GetString(4));
    }

    internal static string Describe(Exception e) => e switch
    {
        PostgresException pg => $"{pg.SqlState}: {pg.MessageText}",
        NpgsqlException { InnerException: { } inner } => inner.Message,
        _ => e.Message,
    };

    public async Task<NpgsqlConnection> OpenDatabaseAsync(string database, CancellationToken cancellationToken)
    {
        var builder = new NpgsqlConnectionStringBuilder(ConnectionString()) { Database = database };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    /// <summary>Reconnects when a failed statement left the connection closed (Npgsql breaks it on some errors).</summary>
    public async Task EnsureConnectedAsync(CancellationToken cancellationToken)
    {
        if (_connection?.State != System.Data.ConnectionState.Open)
        {
            if (_connection is not null)
            {
                await _connection.DisposeAsync();
            }
            await ConnectAsync(cancellationToken);
        }
    }

    public async Task ReloadAsync(CancellationToken cancellationToken)
    {
        await EnsureConnectedAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand("select pg_reload_conf()", Connection);
        await cmd.ExecuteScalarAsync(cancellationToken);
    }

    /// <summary>
    /// Restarts the server the way the manifest allows (systemd unit, explicit command, or pg_ctl
    /// as the data directory's owner) and waits until it accepts connections again.
    /// </summary>
    public async Task RestartAsync(CancellationToken cancellationToken)
    {
        var restart = Host.Restart;
        var dataDirectory = Server.DataDirectory.Length > 0 ? Server.DataDirectory : Host.DataDirectory
            ?? throw new PgStateException("cannot restart: the server's data_directory is unknown; set spec.dataDirectory");
        var (program, arguments) = restart switch
        {
            { Service: { } service } => ("systemctl", (IReadOnlyList<string>)["restart", service]),
            { Command: { Count: > 0 } command } => (command[0], (IReadOnlyList<string>)[.. command.Skip(1)]),
            _ => await DefaultRestartCommandAsync(dataDirectory, restart, cancellationToken),
        };
        await Connection.CloseAsync();
        await Processes.RunAsync(program, arguments, restart.Timeout + TimeSpan.FromSeconds(10), cancellationToken: cancellationToken);
        var deadline = DateTime.UtcNow + restart.Timeout;
        while (true)
        {
            try
            {
                await ConnectAsync(cancellationToken);
                return;
            }
            catch (PgStateException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200, cancellationToken);
            }
        }
    }

    private async Task<(string, IReadOnlyList<string>)> DefaultRestartCommandAsync(string dataDirectory, Manifests.RestartSpec restart, CancellationToken cancellationToken)
    {
        var major = Server.VersionNum / 10000;
        var pgCtl = PostgresPrograms.Find("pg_ctl", major);
        // pg_ctl hands its stdout to the new postmaster; a log file keeps our pipe from staying open.
        var logFile = restart.LogFile ?? Path.Combine(dataDirectory, "pgstate-postmaster.log");
        List<string> args = [pgCtl, "restart", "-D", dataDirectory, "-m", "fast", "-w", "-t", ((int)restart.Timeout.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture), "-l", logFile];
        if (System.Environment.UserName == "root")
        {
            // pg_ctl refuses to run as root: run it as the owner of the data directory.
            var owner = (await Processes.RunAsync("stat", ["-c", "%U", dataDirectory], cancellationToken: cancellationToken)).StandardOutput.Trim();
            return ("runuser", ["-u", owner, "--", .. args]);
        }
        return (args[0], args[1..]);
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }
    }
}
