namespace PgState.Engine.Host;

/// <summary>
/// The host directories pgstate writes outside a manifest's own paths: systemd units, cron files,
/// lock files, its configuration and credentials, its state. Each has a system default and an
/// environment override, so tests (and packagers) root them anywhere.
/// </summary>
public sealed record HostPaths(
    string UnitDirectory,
    string CronDirectory,
    string LockDirectory,
    string ConfigDirectory,
    string CredentialsDirectory,
    string StateDirectory)
{
    // Locks go in a directory of root's (/run/pgstate), not the world-writable /run/lock, where any user could hold
    // or plant a predictable lock file; a process that is not root (a check by the server's user) uses /run/lock.
    public static HostPaths System { get; } = new("/etc/systemd/system", "/etc/cron.d", Posix.IsRoot ? "/run/pgstate" : "/run/lock", "/etc/pgstate",
        "/etc/pgstate/credentials", "/var/lib/pgstate");

    /// <summary>PGSTATE_UNIT_DIR, PGSTATE_CRON_DIR, PGSTATE_LOCK_DIR, PGSTATE_CONFIG_DIR, PGSTATE_CREDENTIALS_DIR, PGSTATE_STATE_DIR.</summary>
    public static HostPaths FromEnvironment(Func<string, string?> environment)
    {
        string Get(string name, string fallback) => environment(name) is { Length: > 0 } v && v.StartsWith('/') ? v.TrimEnd('/') : fallback;
        var config = Get("PGSTATE_CONFIG_DIR", System.ConfigDirectory);
        return new HostPaths(
            Get("PGSTATE_UNIT_DIR", System.UnitDirectory),
            Get("PGSTATE_CRON_DIR", System.CronDirectory),
            Get("PGSTATE_LOCK_DIR", System.LockDirectory),
            config,
            Get("PGSTATE_CREDENTIALS_DIR", config == System.ConfigDirectory ? System.CredentialsDirectory : Path.Combine(config, "credentials")),
            Get("PGSTATE_STATE_DIR", System.StateDirectory));
    }
}
