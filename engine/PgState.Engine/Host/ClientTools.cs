using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace PgState.Engine.Host;

/// <summary>A client program pgstate's jobs run (pg_basebackup, pg_verifybackup, pgbackrest), where it is and which version it is.</summary>
public sealed record ClientTool(string Program, string? Path, string? Version)
{
    /// <summary>The PostgreSQL major of a PostgreSQL tool (15 for "15.18"), or null when unknown.</summary>
    public int? Major => Version is { } v && int.TryParse(v.Split('.')[0], NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : null;

    public string Describe() => Path is null ? $"{Program} (not found)" : $"{Program} {Version ?? "(version unknown)"} ({Path})";
}

/// <summary>
/// Finds client tools and reads their version without running them (the plan path runs no
/// process): every PostgreSQL program carries "NAME (PostgreSQL) VERSION" as one string, and
/// pgBackRest "pgBackRest VERSION"; a tool in /usr/lib/postgresql/N/bin or /usr/pgsql-N/bin is of
/// major N when its text says nothing. Says what a server needs from them.
/// </summary>
public static partial class ClientTools
{
    private const long MaxScanBytes = 64L * 1024 * 1024;

    /// <summary>A PostgreSQL client program for a server of <paramref name="serverMajor"/>: that major's first, else the newest installed, else PATH.</summary>
    public static ClientTool FindPostgres(string program, int serverMajor, string? pathVariable)
    {
        var found = PostgresPrograms.Find(program, serverMajor);
        var path = found.Contains('/', StringComparison.Ordinal) ? found : SearchPath(program, pathVariable);
        if (path is null)
        {
            return new ClientTool(program, null, null);
        }
        var version = ReadVersion(path, $"{program} (PostgreSQL) ") ?? DirectoryMajor(path);
        return new ClientTool(program, path, version);
    }

    /// <summary>pgbackrest from PATH (or /usr/bin), with its version.</summary>
    public static ClientTool FindPgBackRest(string? pathVariable)
    {
        var path = SearchPath("pgbackrest", pathVariable ?? "/usr/bin:/bin");
        return new ClientTool("pgbackrest", path, path is null ? null : ReadVersion(path, "pgBackRest "));
    }

    /// <summary>
    /// Why <paramref name="tool"/> cannot serve a PostgreSQL <paramref name="serverVersion"/> server, with what to install; null when it can.
    /// pg_basebackup streams only from servers of its own major or older ("incompatible server version");
    /// pg_verifybackup reads the backup_manifest versions of its own major and older (17 wrote version 2);
    /// pgBackRest supports PostgreSQL 18 from 2.55.
    /// </summary>
    public static string? Incompatibility(ClientTool tool, int serverMajor, string serverVersion)
    {
        if (tool.Path is null && tool.Program == "pgbackrest")
        {
            return "pgbackrest is not on PATH: install pgBackRest";
        }
        if (tool.Path is null)
        {
            return $"{tool.Program} is not installed (looked in /usr/lib/postgresql/{serverMajor}/bin, /usr/pgsql-{serverMajor}/bin, the other PostgreSQL directories and PATH): {InstallHint(tool.Program, serverMajor)}";
        }
        if (tool.Program == "pgbackrest")
        {
            return serverMajor >= 18 && tool.Version is { } v && CompareVersions(v, "2.55") < 0
                ? $"{tool.Describe()} does not support PostgreSQL {serverVersion} (pgBackRest supports PostgreSQL 18 from 2.55): install pgBackRest 2.55 or later"
                : null;
        }
        if (tool.Major is { } major && major < serverMajor)
        {
            return $"{tool.Describe()} is older than the server (PostgreSQL {serverVersion}): it cannot {(tool.Program == "pg_basebackup" ? "back it up" : "read its backups")}; {InstallHint(tool.Program, serverMajor)}";
        }
        return null;
    }

    /// <summary>What to install for a server of <paramref name="serverMajor"/>: that major's client package, on either family.</summary>
    public static string InstallHint(string program, int serverMajor) => program == "pgbackrest"
        ? "install pgBackRest"
        : $"install PostgreSQL {serverMajor}'s client tools (Debian/Ubuntu: postgresql-client-{serverMajor}; RHEL: postgresql{serverMajor}, both from the PGDG repositories)";

    /// <summary>Compares dotted versions numerically (2.9 &lt; 2.55).</summary>
    public static int CompareVersions(string a, string b)
    {
        var x = a.Split('.');
        var y = b.Split('.');
        for (var i = 0; i < Math.Max(x.Length, y.Length); i++)
        {
            var p = i < x.Length && int.TryParse(x[i], NumberStyles.None, CultureInfo.InvariantCulture, out var u) ? u : 0;
            var q = i < y.Length && int.TryParse(y[i], NumberStyles.None, CultureInfo.InvariantCulture, out var w) ? w : 0;
            if (p != q)
            {
                return p.CompareTo(q);
            }
        }
        return 0;
    }

    private static string? SearchPath(string program, string? pathVariable)
    {
        foreach (var dir in (pathVariable ?? "/usr/local/bin:/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = System.IO.Path.Combine(dir, program);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>The version that follows <paramref name="marker"/> in the program's file (Debian's pg_wrapper, a script, yields none).</summary>
    internal static string? ReadVersion(string path, string marker)
    {
        try
        {
            var info = new FileInfo(HostFiles.ResolveLinks(path));
            if (!info.Exists || info.Length > MaxScanBytes)
            {
                return null;
            }
            var bytes = File.ReadAllBytes(info.FullName);
            var needle = Encoding.ASCII.GetBytes(marker);
            var at = bytes.AsSpan().IndexOf(needle);
            if (at < 0)
            {
                return null;
            }
            var start = at + needle.Length;
            var end = start;
            while (end < bytes.Length && end - start < 32 && (char.IsAsciiDigit((char)bytes[end]) || bytes[end] == (byte)'.'))
            {
                end++;
            }
            var version = Encoding.ASCII.GetString(bytes, start, end - start).TrimEnd('.');
            return VersionText().IsMatch(version) ? version : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string? DirectoryMajor(string path)
    {
        var m = MajorDirectory().Match(path);
        return m.Success ? m.Groups[1].Value : null;
    }

    [GeneratedRegex(@"^[0-9]+(\.[0-9]+)*\z")]
    private static partial Regex VersionText();

    [GeneratedRegex(@"^/usr/(?:lib/postgresql/|pgsql-)([0-9]+)/bin/")]
    private static partial Regex MajorDirectory();
}
