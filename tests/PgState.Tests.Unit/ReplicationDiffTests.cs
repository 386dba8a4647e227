using PgState.Engine.Manifests;
using PgState.Engine.Resources;
using PgState.Modules.Replication;
using PgState.Modules.Replication.Saslprep;

namespace PgState.Tests.Unit;

public class ReplicationDiffTests
{
    private static DesiredRole Role(bool updateAlways = false, bool present = true) =>
        new("backup_user", true, true, false, -1, null, [], new SecretReference("PW", null), updateAlways, present);

    private static LiveRole Live(bool replication = true, int owned = 0) => new("backup_user", true, replication, false, -1, null, [], owned);

    private static Diff<ReplicationAction> Roles(DesiredRole d, LiveRole? l, PasswordState state)
    {
        var diff = new Diff<ReplicationAction>("replication");
        ReplicationDiff.DiffRoles([d], l is null ? new Dictionary<string, LiveRole>() : new() { [l.Name] = l },
            new Dictionary<string, PasswordState> { ["backup_user"] = state }, diff);
        return diff;
    }

    [Fact]
    public void Dropping_a_group_pgstates_own_role_belongs_to_is_blocked_unless_allowed()
    {
        var group = new DesiredRole("admins", false, false, false, -1, null, [], null, false, Present: false);
        var live = new Dictionary<string, LiveRole>
        {
            ["admins"] = new("admins", false, false, false, -1, null, [], 0),
            ["pgstate_admin"] = new("pgstate_admin", true, false, false, -1, null, ["admins"], 0),
        };
        var diff = new Diff<ReplicationAction>("replication");
        ReplicationDiff.DiffRoles([group], live, new Dictionary<string, PasswordState>(), diff, new LockoutGuard("pgstate_admin", Allowed: false));
        Assert.Contains("BLOCKED: pgstate connects as pgstate_admin, a member of admins", Assert.Single(diff.Changes).Change.Note);
        var allowed = new Diff<ReplicationAction>("replication");
        ReplicationDiff.DiffRoles([group], live, new Dictionary<string, PasswordState>(), allowed, new LockoutGuard("pgstate_admin", Allowed: true));
        Assert.Equal("DROP ROLE", Assert.Single(allowed.Changes).Change.Note);
    }

    [Fact]
    public void Password_that_cannot_be_compared_is_left_alone_on_create_policy()
    {
        var diff = Roles(Role(), Live(), PasswordState.Unknown);
        Assert.Empty(diff.Changes);
        Assert.Contains("password: cannot compare (no access", Assert.Single(diff.Warnings).Message);
    }

    [Fact]
    public void A_secret_not_available_here_is_a_warning_never_a_change()
    {
        var diff = Roles(Role(updateAlways: true), Live(), PasswordState.SecretUnavailable);
        Assert.Empty(diff.Changes);
        Assert.Contains("environment variable 'PW' is not available here", Assert.Single(diff.Warnings).Message);
    }

    [Fact]
    public void Password_that_cannot_be_compared_is_set_with_update_always_and_stays_sensitive()
    {
        var change = Assert.Single(Roles(Role(updateAlways: true), Live(), PasswordState.Unknown).Changes).Change;
        Assert.True(change.Sensitive);
        Assert.Contains("cannot compare", change.Note);
    }

    [Fact]
    public void A_new_role_and_its_password_are_two_changes_and_only_the_password_is_sensitive()
    {
        var changes = Roles(Role(), null, PasswordState.Unknown).Changes.Select(c => c.Change).ToList();
        Assert.Equal(["roles.backup_user", "roles.backup_user.password"], changes.Select(c => c.Address));
        Assert.False(changes[0].Sensitive);
        Assert.True(changes[1].Sensitive);
        Assert.DoesNotContain("PASSWORD", changes[0].After);
    }

    [Fact]
    public void Missing_replication_attribute_is_an_update()
    {
        var change = Assert.Single(Roles(Role(), Live(replication: false), PasswordState.Same).Changes).Change;
        Assert.Equal(("LOGIN NOREPLICATION NOSUPERUSER", "LOGIN REPLICATION NOSUPERUSER"), (change.Before, change.After));
    }

    [Fact]
    public void Dropping_a_role_that_owns_objects_is_blocked_with_the_reason()
    {
        var change = Assert.Single(Roles(Role(present: false), Live(owned: 3), PasswordState.Same).Changes).Change;
        Assert.Equal(ChangeAction.Delete, change.Action);
        Assert.StartsWith("BLOCKED: it owns 3 object(s)", change.Note);
    }

    [Fact]
    public void Active_slot_of_the_wrong_type_is_blocked_not_replaced()
    {
        var diff = new Diff<ReplicationAction>("replication");
        ReplicationDiff.DiffSlots([new DesiredSlot("s", "logical", true, "pgoutput", "app", true)],
            new Dictionary<string, LiveSlot> { ["s"] = new("s", "physical", null, null, true, 4242, "reserved", 100) },
            prune: false, 1L << 30, "10GB", diff);
        var change = Assert.Single(diff.Changes);
        Assert.Equal(ChangeAction.Replace, change.Change.Action);
        Assert.Contains("BLOCKED: the slot is active (pid 4242)", change.Change.Note);
        Assert.IsType<DropSlot>(change.Payload);
    }

    [Fact]
    public void Prune_leaves_a_slot_synchronised_from_the_primary_and_says_why()
    {
        var diff = new Diff<ReplicationAction>("replication");
        ReplicationDiff.DiffSlots([],
            new Dictionary<string, LiveSlot>
            {
                ["synced_one"] = new("synced_one", "logical", "pgoutput", "app", false, null, "reserved", 100) { Synced = true },
                ["stale"] = new("stale", "physical", null, null, false, null, "lost", null) { Invalidation = "wal_removed" },
            },
            prune: true, 1L << 30, "10GB", diff);
        var change = Assert.Single(diff.Changes);
        Assert.Equal("slots.stale", change.Change.Address);
        Assert.Contains(diff.Warnings, w => w.Address == "slots.synced_one" && w.Message.Contains("synchronized from the primary", StringComparison.Ordinal));
        Assert.Contains(diff.Warnings, w => w.Address == "slots.stale" && w.Message == "invalidated (wal_removed, wal_status lost): its consumer must be rebuilt");
    }

    [Fact]
    public void Scram_verifier_round_trips_and_differs_per_salt()
    {
        // "-" and "!" are not in base64's alphabet: the cleartext cannot turn up in the verifier by chance ("pw" did, in ~2% of runs).
        const string password = "pw-secret!";
        var a = Scram.NewVerifier(password);
        var b = Scram.NewVerifier(password);
        Assert.NotEqual(a, b);
        Assert.True(Scram.Matches(a, password));
        Assert.False(Scram.Matches(a, "pW-secret!"));
        Assert.DoesNotContain(password, a);
    }

    [Theory]
    // ASCII: as it is, even with characters SASLprep would prohibit (PostgreSQL skips it for ASCII).
    [InlineData("pa ss\tword", "pa ss\tword")]
    // Non-ASCII spaces map to a space; NFKC folds ligatures and full-width letters.
    [InlineData("a\u00A0b", "a b")]
    [InlineData("\uFB01x", "fix")]
    [InlineData("\uFF21\uFF22", "AB")]
    // Mapped to nothing (soft hyphen), and composition (e + combining acute = é).
    [InlineData("se\u00ADcret\u00E9", "secret\u00E9")]
    [InlineData("cafe\u0301", "caf\u00E9")]
    [InlineData("\u1100\u1161\u11A8", "\uAC01")]
    // Prohibited (a control character after mapping) or unassigned in Unicode 3.2 (an emoji): refused, the raw password is used.
    [InlineData("\u00E9\u0007", null)]
    [InlineData("pass\U0001F600", null)]
    // Bidi: right-to-left text must not mix with left-to-right letters.
    [InlineData("\u05D0a\u05D1", null)]
    [InlineData("\u05D0\u05D1", "\u05D0\u05D1")]
    public void Saslprep_prepares_passwords_as_postgresql_does(string password, string? prepared) =>
        Assert.Equal(prepared, SaslPrep.Prepare(password));

    [Fact]
    public void A_verifier_of_a_password_saslprep_changes_is_that_of_the_prepared_password()
    {
        var salt = new byte[16];
        Assert.Equal(Scram.Verifier("fix", salt, 4096), Scram.Verifier("\uFB01x", salt, 4096));
        Assert.NotEqual(Scram.Verifier("pass\U0001F600", salt, 4096), Scram.Verifier("pass", salt, 4096));
    }
}
