using PgState.Engine.Manifests;
using PgState.Engine.Resources;
using PgState.Modules.Replication;

namespace PgState.Tests.Replication;

public class ReplicationDiffTests
{
    private static DesiredRole Role(bool updateAlways = false, bool present = true) =>
        new("backup_user", true, true, false, -1, null, [], new SecretReference("PW", null), updateAlways, present);

    private static LiveRole Live(bool replication = true, int owned = 0) => new("backup_user", true, replication, false, -1, null, [], owned);

    private static (List<ResourceChange> Changes, List<PlanWarning> Warnings) Roles(DesiredRole d, LiveRole? l, PasswordState state)
    {
        var changes = new List<ResourceChange>();
        var warnings = new List<PlanWarning>();
        ReplicationDiff.DiffRoles([d], l is null ? new Dictionary<string, LiveRole>() : new() { [l.Name] = l },
            new Dictionary<string, PasswordState> { ["backup_user"] = state }, changes, warnings);
        return (changes, warnings);
    }

    [Fact]
    public void Password_that_cannot_be_compared_is_left_alone_on_create_policy()
    {
        var (changes, warnings) = Roles(Role(), Live(), PasswordState.Unknown);
        Assert.Empty(changes);
        Assert.Contains("password: cannot compare (no access", Assert.Single(warnings).Message);
    }

    [Fact]
    public void Password_that_cannot_be_compared_is_set_with_update_always_and_stays_sensitive()
    {
        var change = Assert.Single(Roles(Role(updateAlways: true), Live(), PasswordState.Unknown).Changes);
        Assert.True(change.Sensitive);
        Assert.Contains("cannot compare", change.Note);
    }

    [Fact]
    public void Missing_replication_attribute_is_an_update()
    {
        var change = Assert.Single(Roles(Role(), Live(replication: false), PasswordState.Same).Changes);
        Assert.Equal(("NOLOGIN", "LOGIN NOREPLICATION NOSUPERUSER", "LOGIN REPLICATION NOSUPERUSER"),
            ("NOLOGIN", change.Before, change.After));
    }

    [Fact]
    public void Dropping_a_role_that_owns_objects_is_blocked_with_the_reason()
    {
        var change = Assert.Single(Roles(Role(present: false), Live(owned: 3), PasswordState.Same).Changes);
        Assert.Equal(ChangeAction.Delete, change.Action);
        Assert.StartsWith("BLOCKED: it owns 3 object(s)", change.Note);
    }

    [Fact]
    public void Active_slot_of_the_wrong_type_is_blocked_not_replaced()
    {
        var changes = new List<ResourceChange>();
        ReplicationDiff.DiffSlots([new DesiredSlot("s", "logical", true, "pgoutput", "app", true)],
            new Dictionary<string, LiveSlot> { ["s"] = new("s", "physical", null, null, true, 4242, "reserved", 100) },
            prune: false, 1L << 30, "10GB", changes, []);
        var change = Assert.Single(changes);
        Assert.Equal(ChangeAction.Replace, change.Action);
        Assert.Contains("BLOCKED: the slot is active (pid 4242)", change.Note);
        Assert.IsType<DropSlot>(change.Payload);
    }

    [Fact]
    public void Scram_verifier_round_trips_and_differs_per_salt()
    {
        var a = Scram.NewVerifier("pw");
        var b = Scram.NewVerifier("pw");
        Assert.NotEqual(a, b);
        Assert.True(Scram.Matches(a, "pw"));
        Assert.False(Scram.Matches(a, "pW"));
        Assert.DoesNotContain("pw", a[14..]);
    }
}
