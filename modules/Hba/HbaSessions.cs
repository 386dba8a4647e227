using System.Net;
using Npgsql;

namespace PgState.Modules.Hba;

/// <summary>Live sessions that look alike to pg_hba.conf (same kind, address, user, database, ssl), and how many there are.</summary>
public sealed record LiveSessions(HbaConnection Connection, int Count)
{
    /// <summary>app@10.0.1.5 → orders (ssl), as a reviewer reads it.</summary>
    public string Describe() =>
        $"{Count} session{(Count == 1 ? "" : "s")} of {Connection.User}@{(Connection.Address?.ToString() ?? "local")} → {Connection.Database}{(Connection.Ssl ? " (ssl)" : "")}";
}

public enum SessionImpactKind
{
    /// <summary>The new file would not admit them: no rule matches, or the first match is reject.</summary>
    Rejected,

    /// <summary>The new file would admit them with another authentication method.</summary>
    MethodChanged,
}

/// <summary>What the new pg_hba.conf would do to a group of live sessions, naming the rule that decides it.</summary>
public sealed record SessionImpact(LiveSessions Sessions, SessionImpactKind Kind, string? Address, string Message);

/// <summary>
/// The clients connected right now (pg_stat_activity), matched against the live and the new
/// pg_hba.conf with the matcher `hba test` uses: which of them the new file would no longer admit,
/// or would admit with another method. Pure apart from reading the rows.
/// </summary>
public static class HbaSessions
{
    /// <summary>
    /// Client backends and walsenders other than pgstate's own, grouped. A physical walsender has no
    /// database: pg_hba.conf sees it as "replication". A row whose client_port is null belongs to
    /// another user's session this connection may not see (no pg_read_all_stats): counted, not matched.
    /// </summary>
    public const string Sql =
        "select host(a.client_addr), a.usename::text, " +
        "coalesce(a.datname::text, case when a.backend_type = 'walsender' then 'replication' end), " +
        "coalesce(s.ssl, false), coalesce(g.encrypted, false), " +
        "array(select r.rolname::text from pg_roles r where pg_has_role(a.usesysid, r.oid, 'member') order by 1), " +
        "a.client_port is null, count(*)::int " +
        "from pg_stat_activity a left join pg_stat_ssl s on s.pid = a.pid left join pg_stat_gssapi g on g.pid = a.pid " +
        "where a.pid <> pg_backend_pid() and a.backend_type in ('client backend', 'walsender') and a.usename is not null " +
        "group by 1, 2, 3, 4, 5, 6, 7 order by 7, 1 nulls first, 2, 3";

    /// <summary>One row of <see cref="Sql"/>: a group of sessions, or (Hidden) a count of sessions this connection may not see.</summary>
    public static (LiveSessions? Sessions, int Hidden) Read(NpgsqlDataReader r)
    {
        var count = r.GetInt32(7);
        if (r.GetBoolean(6) || r.IsDBNull(2))
        {
            return (null, count);
        }
        var address = r.IsDBNull(0) ? null : IPAddress.Parse(r.GetString(0));
        var connection = new HbaConnection(address is null ? "local" : "host", r.GetString(2), r.GetString(1), address, r.GetBoolean(3), r.GetBoolean(4),
            r.GetFieldValue<string[]>(5).ToHashSet(StringComparer.Ordinal));
        return (new LiveSessions(connection, count), 0);
    }

    /// <summary>
    /// For each group the live file admits today: rejected, or admitted with another method, by the
    /// new file. A group the live file already refuses is not this change's doing and is not reported.
    /// Rules in the order the server reads them (included files too). Rules of the manifest are named
    /// hba.rule[i]; others (outside a managed block) by line.
    /// </summary>
    public static IReadOnlyList<SessionImpact> Impacts(IReadOnlyList<HbaFileRule> live, IReadOnlyList<HbaFileRule> next, IReadOnlyList<LiveSessions> sessions, IReadOnlyList<HbaRule> managed)
    {
        var liveRules = live.Select(r => r.Rule).ToList();
        var nextRules = next.Select(r => r.Rule).ToList();
        var impacts = new List<SessionImpact>();
        foreach (var group in sessions)
        {
            var today = HbaMatcher.FirstMatch(liveRules, group.Connection);
            if (today is not { } t || liveRules[t].Method == "reject")
            {
                continue;
            }
            var todayRule = live[t];
            var after = HbaMatcher.FirstMatch(nextRules, group.Connection);
            var (address, name) = after is { } a ? Name(next[a], managed) : (null, "");
            var todayText = $"today line {todayRule.Line} ({todayRule.Rule.Describe()}) admits them";
            if (after is null)
            {
                impacts.Add(new SessionImpact(group, SessionImpactKind.Rejected, null,
                    $"{group.Describe()} would be rejected: no rule of the new pg_hba.conf matches them; {todayText}"));
            }
            else if (nextRules[after.Value].Method == "reject")
            {
                impacts.Add(new SessionImpact(group, SessionImpactKind.Rejected, address,
                    $"{group.Describe()} would be rejected by {name} ({nextRules[after.Value].Describe()}); {todayText}"));
            }
            else if (nextRules[after.Value].Method != liveRules[t].Method)
            {
                impacts.Add(new SessionImpact(group, SessionImpactKind.MethodChanged, address,
                    $"{group.Describe()} would be admitted by {name} with {nextRules[after.Value].Method} instead of {liveRules[t].Method} (line {todayRule.Line} today): the client must be able to authenticate that way"));
            }
        }
        return impacts;
    }

    private static (string? Address, string Name) Name(HbaFileRule rule, IReadOnlyList<HbaRule> managed)
    {
        for (var i = 0; i < managed.Count; i++)
        {
            if (managed[i].Key == rule.Rule.Key)
            {
                return ($"hba.rule[{i}]", $"hba.rule[{i}]");
            }
        }
        return (null, $"line {rule.Line} of the new pg_hba.conf");
    }
}
