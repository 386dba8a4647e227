using System.Security.Cryptography;
using System.Text;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Hostile;

/// <summary>
/// A fingerprint of everything a hostile input could change on the host: postgresql.auto.conf,
/// pg_hba.conf, the test run's unit, cron and credential directories, roles, slots, tables, and
/// marker files an injected command would create.
/// </summary>
public static class HostState
{
    public const string MarkerPrefix = "/tmp/pgstate-pwned-";

    public static async Task<string> CaptureAsync(ScratchCluster cluster)
    {
        var sb = new StringBuilder();
        sb.Append("auto.conf ").Append(Hash(File.ReadAllBytes(Path.Combine(cluster.DataDirectory, "postgresql.auto.conf")))).Append('\n');
        sb.Append("pg_hba.conf ").Append(Hash(File.ReadAllBytes(cluster.HbaPath()))).Append('\n');
        foreach (var dir in new[] { "systemd", "cron.d", "credentials", "etc" }.Select(d => Path.Combine(CliRunner.HostRoot, d)).Where(Directory.Exists))
        {
            foreach (var f in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                sb.Append(f).Append(' ').Append(Hash(File.ReadAllBytes(f))).Append('\n');
            }
        }
        sb.Append(await cluster.ScalarAsync<string>(
            "select concat_ws(E'\\n', " +
            "(select string_agg(rolname || ':' || rolcanlogin || rolreplication || rolsuper || rolconnlimit || coalesce(rolvaliduntil::text, '-') || coalesce(md5(rolpassword), '-'), ',' order by rolname) from pg_authid), " +
            "(select string_agg(slot_name, ',' order by slot_name) from pg_replication_slots), " +
            "(select string_agg(relname, ',' order by relname) from pg_class where relkind = 'r' and relnamespace = 'public'::regnamespace))"));
        sb.Append('\n').Append(string.Join(',', Directory.EnumerateFiles("/tmp", "pgstate-pwned-*")));
        return sb.ToString();
    }

    private static string Hash(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes))[..16];
}
