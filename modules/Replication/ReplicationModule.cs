using System.Text;
using System.Text.RegularExpressions;
using Npgsql;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Replication;

/// <summary>spec.roles, spec.slots, slotsPrune, slotRetentionWarn, bound.</summary>
public sealed record ReplicationSection(IReadOnlyList<DesiredRole> Roles, IReadOnlyList<DesiredSlot> Slots, bool Prune, long RetentionWarnBytes);

/// <summary>spec.roles, spec.slots: the replication role (password as a SCRAM verifier) and replication slots.</summary>
public sealed partial class ReplicationModule : IModule
{
    public string Name => ReplicationDiff.Module;

    // After settings (a logical slot needs wal_level=logical), before hba.
    public int Order => 55;

    public IBound? Bind(BindContext context)
    {
        var spec = context.Spec;
        var diagnostics = context.Diagnostics;
        var roles = new List<DesiredRole>();
        foreach (var r in spec.Mappings("roles"))
        {
            if (r.String("name") is not { } name)
            {
                continue;
            }
            var at = r["name"]!.Position;
            if (Encoding.UTF8.GetByteCount(name) > 63)
            {
                diagnostics.Error(DiagnosticCodes.ValueTooLong, $"role name {name} is longer than PostgreSQL's 63 bytes", at);
                continue;
            }
            if (roles.Any(x => x.Name == name))
            {
                diagnostics.Error(DiagnosticCodes.RoleTwice, $"role {name} is listed twice", r.Position);
                continue;
            }
            var password = r.Mapping("password");
            var written = password?.Values.Count(v => !v.IsDefault && v.Key is "fromEnv" or "fromFile") ?? 0;
            if (password is not null && written != 1)
            {
                diagnostics.Error(DiagnosticCodes.PasswordSourceCount, $"roles[{name}].password: give exactly one of fromEnv, fromFile", password.Position);
                continue;
            }
            string? validUntil = null;
            var connectionLimit = r.Int32("connectionLimit", diagnostics);
            if (r.LocatedString("validUntil") is { } until)
            {
                if (until.Value == "infinity")
                {
                    validUntil = "infinity";
                }
                else if (ReplicationDiff.ParseTimestamp(until.Value) is { } timestamp)
                {
                    validUntil = ReplicationDiff.NormalizeTimestamp(timestamp);
                }
                else
                {
                    diagnostics.Error(DiagnosticCodes.BadTimestamp, $"roles[{name}].validUntil: \"{TextSafety.Printable(until.Value)}\" is not a timestamp (2030-01-31, 2030-01-31 12:00:00+02) or infinity", until.Position);
                    continue;
                }
            }
            var inRoles = r.Strings("inRoles").Select(g => g.Value).ToList();
            roles.Add(new DesiredRole(name, r.Bool("login") ?? true, r.Bool("replication") ?? false, r.Bool("superuser") ?? false,
                connectionLimit ?? -1, validUntil, inRoles,
                password is null ? null : new SecretReference(password.String("fromEnv"), password.String("fromFile"), password.Position),
                password.String("update") == "always", r.String("state") != "absent"));
        }
        var slots = new List<DesiredSlot>();
        foreach (var s in spec.Mappings("slots"))
        {
            if (s.String("name") is not { } name)
            {
                continue;
            }
            var type = s.String("type") ?? "physical";
            var present = s.String("state") != "absent";
            if (slots.Any(x => x.Name == name))
            {
                diagnostics.Error(DiagnosticCodes.SlotTwice, $"slot {name} is listed twice", s.Position);
                continue;
            }
            if (type == "logical" && (s.String("plugin") is null || s.String("database") is null) && present)
            {
                diagnostics.Error(DiagnosticCodes.LogicalSlotIncomplete, $"logical slot {name} needs plugin and database", s.Position);
                continue;
            }
            if (type == "physical" && (s.Contains("plugin") || s.Contains("database")))
            {
                diagnostics.Error(DiagnosticCodes.PhysicalSlotExtra, $"physical slot {name} takes no plugin or database", (s["plugin"] ?? s["database"])!.KeyOrPosition);
                continue;
            }
            slots.Add(new DesiredSlot(name, type, s.Bool("reserveWal") ?? true, s.String("plugin"), s.String("database"), present));
        }
        var prune = spec.Bool("slotsPrune") ?? false;
        // The schema's default (10GB) is filled in before binding; published for the health checks, which read no other section.
        var warn = spec.Size("slotRetentionWarn", diagnostics)?.Value ?? 10L << 30;
        context.Facts.Publish(HostFacts.SlotRetention, new SlotRetentionFact(warn));
        return roles.Count == 0 && slots.Count == 0 && !prune ? null : new BoundReplication(new ReplicationSection(roles, slots, prune, warn));
    }
}

internal sealed record ReplicationLive(
    IReadOnlyDictionary<string, LiveRole> Roles,
    IReadOnlyDictionary<string, LiveSlot> Slots,
    IReadOnlyDictionary<string, PasswordState> Passwords,
    string MaxSlotWalKeepSize,
    string ConnectedAs,
    bool LockoutAllowed);

internal sealed class BoundReplication(ReplicationSection section) : BoundModule<ReplicationLive, ReplicationAction>
{
    private CatalogQuery<LiveRole>? _roles;
    private CatalogQuery<LiveSlot>? _slots;
    private CatalogQuery<(string Name, string? Verifier)>? _stored;
    private CatalogQuery<string>? _maxKeep;

    public override string Name => ReplicationDiff.Module;

    // Slots need a raised max_replication_slots (a restart-only setting) to be live first.
    public override bool NeedsActiveConfiguration => section.Slots.Count > 0;

    public override void DeclareReads(CatalogReads reads, ServerInfo server)
    {
        var names = section.Roles.Select(r => r.Name).ToArray();
        _roles = reads.Add(RoleColumns + "where r.rolname = any($1)", ReadRole, [names]);
        _slots = reads.Add(SlotQuery(server.Major), ReadSlot);
        _maxKeep = reads.Add("select current_setting('max_slot_wal_keep_size')", r => r.GetString(0));
        _stored = server.IsSuperuser && names.Length > 0
            ? reads.Add("select rolname::text, rolpassword from pg_authid where rolname = any($1)", r => (r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1)), [names])
            : null;
    }

    /// <summary>Roles as the diff reads them (import reads the login and replication roles with the same columns).</summary>
    internal const string RoleColumns =
        "select r.rolname::text, r.rolcanlogin, r.rolreplication, r.rolsuper, r.rolconnlimit, r.rolvaliduntil, " +
        "array(select g.rolname::text from pg_auth_members m join pg_roles g on g.oid = m.roleid where m.member = r.oid), " +
        "(select count(*)::int from pg_shdepend d where d.refobjid = r.oid and d.deptype = 'o') " +
        "from pg_roles r ";

    internal static LiveRole ReadRole(NpgsqlDataReader r) =>
        new(r.GetString(0), r.GetBoolean(1), r.GetBoolean(2), r.GetBoolean(3), r.GetInt32(4),
            r.IsDBNull(5) ? null : r.GetFieldValue<DateTime>(5), r.GetFieldValue<string[]>(6), r.GetInt32(7));

    /// <summary>pg_replication_slots as the diff reads it (import adds its own where clause).</summary>
    internal static string SlotQuery(int major)
    {
        // 17 added invalidation_reason and synced (a major newer than 18 gets the newest shape pgstate knows).
        var since17 = major >= 17 ? "invalidation_reason, synced" : "null::text, false";
        return "select slot_name::text, slot_type, plugin::text, database::text, active, active_pid, wal_status, " +
            "case when restart_lsn is null then null else pg_wal_lsn_diff(case when pg_is_in_recovery() then pg_last_wal_receive_lsn() else pg_current_wal_lsn() end, restart_lsn)::bigint end, " +
            since17 + " from pg_replication_slots";
    }

    internal static LiveSlot ReadSlot(NpgsqlDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3),
            r.GetBoolean(4), r.IsDBNull(5) ? null : r.GetInt32(5), r.IsDBNull(6) ? null : r.GetString(6), r.IsDBNull(7) ? null : r.GetInt64(7))
        {
            Invalidation = r.IsDBNull(8) ? null : r.GetString(8),
            Synced = !r.IsDBNull(9) && r.GetBoolean(9),
        };

    protected override Task<ReplicationLive> ReadLiveAsync(IHostSession session, CancellationToken cancellationToken)
    {
        var roles = _roles!.Rows.ToDictionary(r => r.Name, StringComparer.Ordinal);
        var slots = _slots!.Rows.ToDictionary(s => s.Name, StringComparer.Ordinal);
        var stored = _stored?.Rows.ToDictionary(r => r.Name, r => r.Verifier, StringComparer.Ordinal);
        var passwords = new Dictionary<string, PasswordState>(StringComparer.Ordinal);
        foreach (var role in section.Roles.Where(r => r.Password is not null && roles.ContainsKey(r.Name)))
        {
            if (stored is null)
            {
                passwords[role.Name] = PasswordState.Unknown;
            }
            else if (!session.Secrets.TryResolve(role.Password!, out var password, out _))
            {
                passwords[role.Name] = PasswordState.SecretUnavailable;
            }
            else
            {
                passwords[role.Name] = stored.GetValueOrDefault(role.Name) is { } verifier && Scram.Matches(verifier, password) ? PasswordState.Same : PasswordState.Differs;
            }
        }
        return Task.FromResult(new ReplicationLive(roles, slots, passwords, _maxKeep!.Rows.FirstOrDefault() ?? "-1",
            session.Server.SessionUser, session.Allowances.Contains("lockout")));
    }

    public override void Diff(ReplicationLive live, Diff<ReplicationAction> diff)
    {
        ReplicationDiff.DiffRoles(section.Roles, live.Roles, live.Passwords, diff, new LockoutGuard(live.ConnectedAs, live.LockoutAllowed));
        ReplicationDiff.DiffSlots(section.Slots, live.Slots, section.Prune, section.RetentionWarnBytes, live.MaxSlotWalKeepSize, diff);
    }

    // The digest covers what the plan depends on; stored verifiers are never kept, only whether they match.
    public override string Digest(ReplicationLive live) =>
        string.Join(';', live.Roles.Values.OrderBy(r => r.Name, StringComparer.Ordinal).Select(r =>
            $"{r.Name}:{r.Login}{r.Replication}{r.Superuser}{r.ConnectionLimit}{r.ValidUntil:O}{string.Join(',', r.MemberOf)}:{live.Passwords.GetValueOrDefault(r.Name)}"))
        + "|" + string.Join(';', live.Slots.Values.OrderBy(s => s.Name, StringComparer.Ordinal).Select(s => $"{s.Name}:{s.Type}:{s.Plugin}:{s.Database}:{s.Active}:{s.Synced}:{s.Invalidation}"));

    protected override async Task<string?> ApplyAsync(IHostSession session, PlannedChange<ReplicationAction> change, CancellationToken cancellationToken)
    {
        var c = session.Connection;
        switch (change.Payload)
        {
            case CreateRole create:
                await ExecAsync(c, $"CREATE ROLE {Sql.Identifier(create.Role.Name)} WITH {RoleOptions(create.Role)}", [], cancellationToken);
                return null;
            case AlterRole alter:
                if (alter.BlockedBecause is not null)
                {
                    throw new PgStateException($"refused to alter role {alter.Role.Name}: {alter.BlockedBecause}");
                }
                await ExecAsync(c, $"ALTER ROLE {Sql.Identifier(alter.Role.Name)} WITH {RoleOptions(alter.Role)}", [], cancellationToken);
                return null;
            case SetPassword set:
                // The SCRAM verifier is computed here: the cleartext never reaches the server or its logs.
                var verifier = Scram.NewVerifier(session.Secrets.Resolve(set.Role.Password!));
                // Nor does the verifier reach the server's log (log_statement = all would write it): one implicit
                // transaction whose SET LOCAL keeps this statement out of it (superusers only may set these).
                var quiet = session.Server.IsSuperuser ? "SET LOCAL log_statement = 'none'; SET LOCAL log_min_duration_statement = -1; " : "";
                await ExecAsync(c, $"{quiet}ALTER ROLE {Sql.Identifier(set.Role.Name)} WITH PASSWORD {Sql.Literal(verifier)}", [], cancellationToken);
                return null;
            case GrantRole grant:
                await ExecAsync(c, $"GRANT {Sql.Identifier(grant.Group)} TO {Sql.Identifier(grant.Role)}", [], cancellationToken);
                return null;
            case DropRole drop:
                if (drop.BlockedBecause is not null)
                {
                    throw new PgStateException($"refused to drop role {drop.Role}: {drop.BlockedBecause}");
                }
                await ExecAsync(c, $"DROP ROLE {Sql.Identifier(drop.Role)}", [], cancellationToken);
                return null;
            case CreateSlot slot when change.Change.Action == ChangeAction.Replace:
                await ExecAsync(c, "select pg_drop_replication_slot($1)", [slot.Slot.Name], cancellationToken);
                await CreateSlotAsync(session, slot.Slot, cancellationToken);
                return null;
            case CreateSlot slot:
                await CreateSlotAsync(session, slot.Slot, cancellationToken);
                return null;
            case DropSlot drop:
                if (drop.BlockedBecause is not null)
                {
                    throw new PgStateException($"refused to drop slot {drop.Name}: {drop.BlockedBecause}");
                }
                await ExecAsync(c, "select pg_drop_replication_slot($1)", [drop.Name], cancellationToken);
                return null;
            default:
                throw new InvalidOperationException("unknown replication change");
        }
    }

    private static async Task CreateSlotAsync(IHostSession session, DesiredSlot slot, CancellationToken cancellationToken)
    {
        if (slot.Type == "physical")
        {
            await ExecAsync(session.Connection, "select pg_create_physical_replication_slot($1, $2)", [slot.Name, slot.ReserveWal], cancellationToken);
            return;
        }
        // A logical slot belongs to a database: create it from a connection to that database.
        await using var connection = await session.OpenDatabaseAsync(slot.Database!, cancellationToken);
        await ExecAsync(connection, "select pg_create_logical_replication_slot($1, $2)", [slot.Name, slot.Plugin!], cancellationToken);
    }

    private static string RoleOptions(DesiredRole r) =>
        $"{(r.Login ? "LOGIN" : "NOLOGIN")} {(r.Replication ? "REPLICATION" : "NOREPLICATION")} {(r.Superuser ? "SUPERUSER" : "NOSUPERUSER")} CONNECTION LIMIT {r.ConnectionLimit}"
        + (r.ValidUntil is null ? "" : $" VALID UNTIL {Sql.Literal(r.ValidUntil)}");

    private static async Task ExecAsync(NpgsqlConnection connection, string sql, object[] parameters, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        foreach (var p in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        }
        try
        {
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (PostgresException e)
        {
            // The statement may hold a verifier: report the server's message, never the SQL.
            throw new PgStateException($"{e.SqlState}: {e.MessageText}");
        }
    }
}
