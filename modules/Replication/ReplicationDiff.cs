using System.Globalization;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Replication;

/// <summary>A role as the manifest wants it. ValidUntil is normalised (UTC "yyyy-MM-dd HH:mm:ss+00" or infinity).</summary>
public sealed record DesiredRole(string Name, bool Login, bool Replication, bool Superuser, int ConnectionLimit, string? ValidUntil,
    IReadOnlyList<string> InRoles, SecretReference? Password, bool UpdateAlways, bool Present);

public sealed record LiveRole(string Name, bool Login, bool Replication, bool Superuser, int ConnectionLimit, DateTime? ValidUntil,
    IReadOnlyList<string> MemberOf, int OwnedObjects);

/// <summary>Whether the stored password equals the desired one: known, or unknown (no access to pg_authid).</summary>
public enum PasswordState
{
    Same,
    Differs,
    Unknown,

    /// <summary>The secret itself is not available here (a nightly run without the CI's secrets).</summary>
    SecretUnavailable,
}

public sealed record DesiredSlot(string Name, string Type, bool ReserveWal, string? Plugin, string? Database, bool Present);

public sealed record LiveSlot(string Name, string Type, string? Plugin, string? Database, bool Active, int? ActivePid, string? WalStatus, long? RetainedBytes)
{
    /// <summary>PostgreSQL 17+: why the slot was invalidated (wal_removed, rows_removed, wal_level_insufficient; 18: idle_timeout).</summary>
    public string? Invalidation { get; init; }

    /// <summary>PostgreSQL 17+: a standby's slot kept in step with the primary's by slot synchronisation; not the operator's to drop.</summary>
    public bool Synced { get; init; }
}

public abstract record ReplicationAction;

public sealed record CreateRole(DesiredRole Role) : ReplicationAction;

public sealed record AlterRole(DesiredRole Role, string? BlockedBecause = null) : ReplicationAction;

/// <summary>The role pgstate's own connection uses, and whether the operator allowed locking it out (--allow-lockout).</summary>
public sealed record LockoutGuard(string ConnectedAs, bool Allowed)
{
    public static LockoutGuard None { get; } = new("", true);
}

public sealed record SetPassword(DesiredRole Role) : ReplicationAction;

public sealed record GrantRole(string Role, string Group) : ReplicationAction;

public sealed record DropRole(string Role, string? BlockedBecause) : ReplicationAction;

public sealed record CreateSlot(DesiredSlot Slot) : ReplicationAction;

public sealed record DropSlot(string Name, string? BlockedBecause) : ReplicationAction;

/// <summary>Roles and slots: pure diff, unit-testable. Passwords appear only as (sensitive).</summary>
public static class ReplicationDiff
{
    public const string Module = "replication";

    public static string Attributes(bool login, bool replication, bool superuser, int limit, string? validUntil) =>
        string.Join(' ', new[]
        {
            login ? "LOGIN" : "NOLOGIN", replication ? "REPLICATION" : "NOREPLICATION", superuser ? "SUPERUSER" : "NOSUPERUSER",
            limit >= 0 ? $"CONNECTION LIMIT {limit}" : null, validUntil is null ? null : $"VALID UNTIL {validUntil}",
        }.Where(s => s is not null));

    public static void DiffRoles(IReadOnlyList<DesiredRole> desired, IReadOnlyDictionary<string, LiveRole> live,
        IReadOnlyDictionary<string, PasswordState> passwords, Diff<ReplicationAction> diff, LockoutGuard? guard = null)
    {
        guard ??= LockoutGuard.None;
        // pgstate's own role losing LOGIN or SUPERUSER (or dropped) leaves a host nobody manages: refused unless --allow-lockout.
        string? LocksOut(string name, string what) => name == guard.ConnectedAs && !guard.Allowed
            ? $"pgstate connects as {name}: {what} would lock it out of this server; pass --allow-lockout to apply anyway"
            : null;
        // A role pgstate's own role is a member of: dropping it takes away what pgstate has through it (a non-superuser's rights).
        var viaGroup = live.TryGetValue(guard.ConnectedAs, out var me) ? me.MemberOf : [];
        string? LocksOutThroughGroup(string name) => !guard.Allowed && viaGroup.Contains(name)
            ? $"pgstate connects as {guard.ConnectedAs}, a member of {name}: dropping {name} takes away what {guard.ConnectedAs} has through it; pass --allow-lockout to apply anyway"
            : null;
        foreach (var d in desired)
        {
            var address = $"roles.{d.Name}";
            live.TryGetValue(d.Name, out var l);
            if (!d.Present)
            {
                if (l is not null)
                {
                    var blocked = LocksOut(d.Name, "dropping the role") ?? LocksOutThroughGroup(d.Name)
                        ?? (l.OwnedObjects > 0 ? $"it owns {l.OwnedObjects} object(s); reassign or drop them first (REASSIGN OWNED BY / DROP OWNED BY)" : null);
                    diff.Add(address, ChangeAction.Delete, Attributes(l.Login, l.Replication, l.Superuser, l.ConnectionLimit, null), null, Activation.None,
                        new DropRole(d.Name, blocked), blocked is null ? "DROP ROLE" : "BLOCKED: " + blocked);
                }
                continue;
            }
            var wanted = Attributes(d.Login, d.Replication, d.Superuser, d.ConnectionLimit, d.ValidUntil);
            if (l is null)
            {
                diff.Add(address, ChangeAction.Create, null, wanted, Activation.None, new CreateRole(d));
                if (d.Password is not null)
                {
                    diff.Add($"{address}.password", ChangeAction.Create, null, "SCRAM-SHA-256 verifier", Activation.None, new SetPassword(d), sensitive: true);
                }
                foreach (var group in d.InRoles)
                {
                    diff.Add($"{address}.member_of[{group}]", ChangeAction.Create, null, group, Activation.None, new GrantRole(d.Name, group));
                }
                continue;
            }
            var validUntilDiffers = d.ValidUntil is not null && !SameTimestamp(d.ValidUntil, l.ValidUntil);
            var current = Attributes(l.Login, l.Replication, l.Superuser, l.ConnectionLimit, l.ValidUntil?.ToString("yyyy-MM-dd HH:mm:ssK", CultureInfo.InvariantCulture));
            if (l.Login != d.Login || l.Replication != d.Replication || l.Superuser != d.Superuser || l.ConnectionLimit != d.ConnectionLimit || validUntilDiffers)
            {
                var blocked = l.Login && !d.Login ? LocksOut(d.Name, "NOLOGIN")
                    : l.Superuser && !d.Superuser ? LocksOut(d.Name, "NOSUPERUSER")
                    : validUntilDiffers && ExpiresBy(d.ValidUntil!, DateTime.UtcNow) ? LocksOut(d.Name, $"VALID UNTIL {d.ValidUntil} (its password expires then)")
                    : d.ConnectionLimit == 0 && !d.Superuser ? LocksOut(d.Name, "CONNECTION LIMIT 0")
                    : null;
                var note = blocked is not null ? "BLOCKED: " + blocked
                    : l.Superuser && !d.Superuser ? "removes SUPERUSER: the manifest does not say superuser: true for this role" : null;
                diff.Add(address, ChangeAction.Update, current, wanted, Activation.None, new AlterRole(d, blocked), note);
            }
            if (d.Password is not null)
            {
                var state = passwords.GetValueOrDefault(d.Name, PasswordState.Unknown);
                if (state == PasswordState.Differs)
                {
                    diff.Add($"{address}.password", ChangeAction.Update, "stored verifier", "SCRAM-SHA-256 verifier", Activation.None, new SetPassword(d), "password differs", sensitive: true);
                }
                else if (state == PasswordState.SecretUnavailable)
                {
                    diff.Warn($"{address}.password", $"password: cannot compare: {d.Password.Describe()} is not available here; left as it is");
                }
                else if (state == PasswordState.Unknown)
                {
                    if (d.UpdateAlways)
                    {
                        diff.Add($"{address}.password", ChangeAction.Update, "stored verifier", "SCRAM-SHA-256 verifier", Activation.None, new SetPassword(d),
                            "password: cannot compare (no access to pg_authid); set because password.update is always", sensitive: true);
                    }
                    else
                    {
                        diff.Warn($"{address}.password", "password: cannot compare (no access to pg_authid); left as it is (password.update: on-create)");
                    }
                }
            }
            foreach (var group in d.InRoles.Where(g => !l.MemberOf.Contains(g)))
            {
                diff.Add($"{address}.member_of[{group}]", ChangeAction.Create, null, group, Activation.None, new GrantRole(d.Name, group));
            }
        }
    }

    /// <summary>Whether a VALID UNTIL value has passed by <paramref name="now"/> or passes within a day (before the next nightly run).</summary>
    private static bool ExpiresBy(string validUntil, DateTime now) =>
        validUntil != "infinity" && ParseTimestamp(validUntil) is { } until && until.UtcDateTime <= now.AddDays(1);

    private static bool SameTimestamp(string desired, DateTime? live)
    {
        if (desired == "infinity")
        {
            return live == DateTime.MaxValue;
        }
        return live is { } l && ParseTimestamp(desired) is { } d && d.UtcDateTime == DateTime.SpecifyKind(l, DateTimeKind.Utc).ToUniversalTime();
    }

    /// <summary>A VALID UNTIL value: infinity or a timestamp (UTC unless a zone is given); null when it is neither.</summary>
    public static DateTimeOffset? ParseTimestamp(string text)
    {
        string[] formats = ["yyyy-MM-dd", "yyyy-MM-dd HH:mm", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-ddTHH:mm:ss", "yyyy-MM-dd HH:mm:ssK", "yyyy-MM-ddTHH:mm:ssK",
            "yyyy-MM-dd HH:mm:sszz", "yyyy-MM-dd HH:mm:ss.FFFFFFK", "yyyy-MM-ddTHH:mm:ss.FFFFFFK"];
        return DateTimeOffset.TryParseExact(text.Trim(), formats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var value)
            && value.Year is >= 1 and <= 9999
            ? value
            : null;
    }

    /// <summary>The form pgstate sends: UTC, to the second.</summary>
    public static string NormalizeTimestamp(DateTimeOffset value) => value.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'+00'", CultureInfo.InvariantCulture);

    public static void DiffSlots(IReadOnlyList<DesiredSlot> desired, IReadOnlyDictionary<string, LiveSlot> live, bool prune, long retentionWarnBytes,
        string maxSlotWalKeepSize, Diff<ReplicationAction> diff)
    {
        foreach (var d in desired)
        {
            var address = $"slots.{d.Name}";
            live.TryGetValue(d.Name, out var l);
            if (!d.Present)
            {
                if (l is not null)
                {
                    Drop(diff, address, l);
                }
                continue;
            }
            var shape = d.Type == "logical" ? $"logical ({d.Plugin} on {d.Database})" : "physical";
            if (l is null)
            {
                diff.Add(address, ChangeAction.Create, null, shape, Activation.None, new CreateSlot(d));
            }
            else if (l.Type != d.Type || (d.Type == "logical" && (l.Plugin != d.Plugin || l.Database != d.Database)))
            {
                var liveShape = l.Type == "logical" ? $"logical ({l.Plugin} on {l.Database})" : "physical";
                var blocked = l.Active ? $"BLOCKED: the slot is active (pid {l.ActivePid}); an active slot is never dropped" : "drop and create again";
                diff.Add(address, ChangeAction.Replace, liveShape, shape, Activation.None, l.Active ? new DropSlot(d.Name, blocked) : new CreateSlot(d), blocked);
            }
        }
        if (prune)
        {
            foreach (var l in live.Values.Where(l => !desired.Any(d => d.Name == l.Name)).OrderBy(l => l.Name, StringComparer.Ordinal))
            {
                if (l.Synced)
                {
                    // The server refuses to drop it ("synchronized from the primary server"); the primary owns it.
                    diff.Warn($"slots.{l.Name}", "not pruned: synchronized from the primary (synced = true); drop it on the primary");
                    continue;
                }
                Drop(diff, $"slots.{l.Name}", l, "not in the manifest (slotsPrune: true)");
            }
        }
        foreach (var l in live.Values.OrderBy(l => l.Name, StringComparer.Ordinal))
        {
            if (l.Invalidation is { } reason)
            {
                diff.Warn($"slots.{l.Name}", $"invalidated ({reason}{(l.WalStatus is null ? "" : $", wal_status {l.WalStatus}")}): its consumer must be rebuilt");
            }
            else if (l.WalStatus is "lost" or "unreserved")
            {
                diff.Warn($"slots.{l.Name}", $"wal_status is {l.WalStatus}: the WAL this slot needs is {(l.WalStatus == "lost" ? "gone; its consumer must be rebuilt" : "about to be removed")}");
            }
            if (l.RetainedBytes is { } retained && retained > retentionWarnBytes)
            {
                diff.Warn($"slots.{l.Name}", $"retains {Bytes(retained)} of WAL (more than {Bytes(retentionWarnBytes)}){(l.Active ? "" : " and is inactive")}: pg_wal keeps growing until its consumer catches up or the slot is dropped");
            }
        }
        if (live.Count > 0 && maxSlotWalKeepSize == "-1")
        {
            diff.Warn(null, "max_slot_wal_keep_size is unlimited (-1) while slots exist: a stalled consumer can fill pg_wal and stop the server");
        }
    }

    private static void Drop(Diff<ReplicationAction> diff, string address, LiveSlot l, string? why = null)
    {
        var shape = l.Type == "logical" ? $"logical ({l.Plugin} on {l.Database})" : "physical";
        var blocked = l.Active ? $"the slot is active (pid {l.ActivePid}); an active slot is never dropped" : null;
        diff.Add(address, ChangeAction.Delete, shape + (l.RetainedBytes is { } r ? $", retains {Bytes(r)}" : ""), null, Activation.None,
            new DropSlot(l.Name, blocked), blocked is null ? why : "BLOCKED: " + blocked);
    }

    public static string Bytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.#} GB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.#} MB",
        >= 1L << 10 => $"{bytes / 1024.0:0.#} kB",
        _ => $"{bytes} bytes",
    };
}
