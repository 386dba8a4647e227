using System.Security.Cryptography;
using System.Text;
using Npgsql;
using PgState.Engine.Diagnostics;

namespace PgState.Engine.Host;

/// <summary>
/// One apply per server at a time: a PostgreSQL advisory lock (seen by every pgstate on any machine)
/// and a lock file on this machine, both keyed on the server itself (system identifier and data
/// directory), not on the manifest's name, so two manifests for one server never apply at once.
/// </summary>
internal sealed class ApplyLock : IAsyncDisposable
{
    private const int SharingViolation = unchecked((int)0x80070020);

    private readonly NpgsqlConnection _connection;
    private readonly long _key;
    private readonly FileStream _file;

    private ApplyLock(NpgsqlConnection connection, long key, FileStream file)
    {
        _connection = connection;
        _key = key;
        _file = file;
    }

    public static long KeyFor(string identity) =>
        BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes("pgstate:" + identity)), 0);

    public static string FileFor(HostPaths paths, ServerInfo server) =>
        Path.Combine(paths.LockDirectory, $"pgstate-{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(server.Identity)))[..16]}.lock");

    public static async Task<ApplyLock> AcquireAsync(IHostSession session, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var key = KeyFor(session.Server.Identity);
        var path = FileFor(session.Paths, session.Server);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            string holder;
            FileStream? file;
            try
            {
                if (!Directory.Exists(session.Paths.LockDirectory))
                {
                    Directory.CreateDirectory(session.Paths.LockDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                        UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
                }
                file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException e) when (e.HResult == SharingViolation)
            {
                file = null;
                holder = $"lock file {path}: {ReadHolder(path)}";
                if (DateTime.UtcNow >= deadline)
                {
                    throw Busy(session, holder);
                }
                await Task.Delay(250, cancellationToken);
                continue;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Not "another apply is running": the lock cannot be taken at all (read-only, permissions).
                throw new PgStateException($"cannot create the apply lock file {path}: {e.Message} (set PGSTATE_LOCK_DIR to a writable directory)");
            }
            await using var cmd = new NpgsqlCommand("select pg_try_advisory_lock($1)", session.Connection) { Parameters = { new() { Value = key } } };
            if ((bool)(await cmd.ExecuteScalarAsync(cancellationToken))!)
            {
                file.SetLength(0);
                file.Write(Encoding.UTF8.GetBytes($"pid {Environment.ProcessId} on {Environment.MachineName} for host '{session.Host.Name}' since {DateTime.UtcNow:O}\n"));
                file.Flush();
                return new ApplyLock(session.Connection, key, file);
            }
            await file.DisposeAsync();
            holder = await AdvisoryHolderAsync(session.Connection, key, cancellationToken);
            if (DateTime.UtcNow >= deadline)
            {
                throw Busy(session, holder);
            }
            await Task.Delay(250, cancellationToken);
        }
    }

    private static PgStateException Busy(IHostSession session, string holder) =>
        new($"another pgstate apply is running on this server (host '{session.Host.Name}', {session.Server.Identity}): {holder}. Retry later or pass --lock-timeout to wait.");

    private static string ReadHolder(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            var buffer = new byte[512];
            var n = stream.Read(buffer);
            return Encoding.UTF8.GetString(buffer, 0, n).Trim() is { Length: > 0 } s ? s : "held";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
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
                await cmd.ExecuteScalarAsync(CancellationToken.None);
            }
        }
        catch (NpgsqlException)
        {
            // the connection is gone; so is the session's advisory lock
        }
        finally
        {
            await _file.DisposeAsync();
        }
    }
}
