using Npgsql;
using PgState.Engine.Diagnostics;

namespace PgState.Engine.Host;

/// <summary>
/// One apply per host at a time: a PostgreSQL advisory lock (seen by every pgstate on any machine)
/// and a lock file on this machine. A second apply fails fast, naming the holder and since when,
/// or waits up to --lock-timeout.
/// </summary>
public sealed class ApplyLock : IAsyncDisposable
{
    private readonly NpgsqlConnection _connection;
    private readonly long _key;
    private readonly FileStream _file;

    private ApplyLock(NpgsqlConnection connection, long key, FileStream file)
    {
        _connection = connection;
        _key = key;
        _file = file;
    }

    public static string Directory => Environment.GetEnvironmentVariable("PGSTATE_LOCK_DIR") is { Length: > 0 } d ? d : "/run/lock";

    public static long KeyFor(string host) =>
        BitConverter.ToInt64(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("pgstate:" + host)), 0);

    public static async Task<ApplyLock> AcquireAsync(IHostSession session, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var key = KeyFor(session.Host.Name);
        // Per host name and server: two hosts may share a name in different repos, never a server.
        var target = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(session.Host.Connection.Describe())))[..12];
        var path = Path.Combine(Directory, $"pgstate-{session.Host.Name}-{target}.lock");
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            string? holder = null;
            FileStream? file = null;
            try
            {
                System.IO.Directory.CreateDirectory(Directory);
                file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                holder = $"lock file {path}: {ReadHolder(path)}";
            }
            if (file is not null)
            {
                await using var cmd = new NpgsqlCommand("select pg_try_advisory_lock($1)", session.Connection) { Parameters = { new() { Value = key } } };
                if ((bool)(await cmd.ExecuteScalarAsync(cancellationToken))!)
                {
                    file.SetLength(0);
                    file.Write(System.Text.Encoding.UTF8.GetBytes($"pid {Environment.ProcessId} on {Environment.MachineName} since {DateTime.UtcNow:O}\n"));
                    file.Flush();
                    return new ApplyLock(session.Connection, key, file);
                }
                await file.DisposeAsync();
                holder = await AdvisoryHolderAsync(session.Connection, key, cancellationToken);
            }
            if (DateTime.UtcNow >= deadline)
            {
                throw new PgStateException($"another pgstate apply is running on host '{session.Host.Name}': {holder}. Retry later or pass --lock-timeout to wait.");
            }
            await Task.Delay(250, cancellationToken);
        }
    }

    private static string ReadHolder(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return new StreamReader(stream).ReadToEnd().Trim() is { Length: > 0 } s ? s : "held";
        }
        catch (IOException)
        {
            return "held";
        }
    }

    private static async Task<string> AdvisoryHolderAsync(NpgsqlConnection connection, long key, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(
            "select a.pid, a.usename::text, coalesce(host(a.client_addr), 'local socket'), a.application_name, a.backend_start " +
            "from pg_locks l join pg_stat_activity a on a.pid = l.pid where l.locktype = 'advisory' and l.granted " +
            "and l.classid = (($1 >> 32) & 4294967295)::oid and l.objid = ($1 & 4294967295)::oid and l.objsubid = 1 limit 1", connection)
        { Parameters = { new() { Value = key } } };
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? $"advisory lock held by backend pid {reader.GetInt32(0)} ({reader.GetString(3)}, user {reader.GetString(1)} from {reader.GetString(2)}) since {reader.GetDateTime(4):u}"
            : "advisory lock held (holder not visible)";
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_connection.State == System.Data.ConnectionState.Open)
            {
                await using var cmd = new NpgsqlCommand("select pg_advisory_unlock($1)", _connection) { Parameters = { new() { Value = _key } } };
                await cmd.ExecuteScalarAsync();
            }
        }
        finally
        {
            await _file.DisposeAsync();
        }
    }
}
