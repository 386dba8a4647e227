using PgState.Engine.Manifests;
using PgState.Engine.Resources;
using PgState.Modules.Archiving;

namespace PgState.Tests.Unit;

/// <summary>The settings diff is a pure function of desired and live state: no server needed.</summary>
public class SettingsDiffTests
{
    private static readonly ParameterInfo ArchiveMode = new("archive_mode", "enum", null, "postmaster", null, null, ["always", "on", "off"]);
    private static readonly ParameterInfo Timeout = new("archive_timeout", "integer", "s", "sighup", "0", "1073741823", []);

    private sealed record Result(IReadOnlyList<PlannedChange<SettingWrite>> Planned, IReadOnlyList<PendingActivation> Pending, IReadOnlyList<PlanWarning> Warnings)
    {
        public IReadOnlyList<ResourceChange> Changes => [.. Planned.Select(p => p.Change)];
    }

    private static Result Diff(DesiredSetting desired, LiveSetting live, params FileSetting[] files)
    {
        var diff = new Diff<SettingWrite>("archiving");
        SettingsDiff.Diff([desired], new Dictionary<string, LiveSetting> { [desired.Name] = live },
            files.ToLookup(f => f.Name, StringComparer.OrdinalIgnoreCase), filesReadable: true, RestartPolicy.Never, diff);
        return new Result(diff.Changes, diff.Pending, diff.Warnings);
    }

    private static FileSetting Auto(string name, string value, int seqno = 10) => new(name, "/data/postgresql.auto.conf", 3, seqno, value, null);

    [Fact]
    public void Converged_value_in_another_unit_is_no_change()
    {
        var diff = Diff(new("archive_timeout", "5min", null, "t"), new(Timeout, "300", "configuration file", false, "0"), Auto("archive_timeout", "300s"));
        Assert.Empty(diff.Changes);
        Assert.Empty(diff.Pending);
    }

    [Fact]
    public void Differing_value_is_an_update_with_reload()
    {
        var diff = Diff(new("archive_timeout", "5min", null, "t"), new(Timeout, "0", "default", false, "0"));
        var change = Assert.Single(diff.Changes);
        Assert.Equal(("settings.archive_timeout", ChangeAction.Update, "0", "5min", Activation.Reload),
            (change.Address, change.Action, change.Before, change.After, change.Activation));
    }

    [Fact]
    public void Written_but_not_reloaded_is_pending_reload_not_a_change()
    {
        var diff = Diff(new("archive_timeout", "5min", null, "t"), new(Timeout, "0", "default", false, "0"), Auto("archive_timeout", "5min"));
        Assert.Empty(diff.Changes);
        Assert.Equal(Activation.Reload, Assert.Single(diff.Pending).Needs);
    }

    [Fact]
    public void A_string_the_server_respells_is_converged_and_file_names_match_whatever_their_case()
    {
        var dateStyle = new ParameterInfo("DateStyle", "string", null, "user", null, null, []);
        var diff = Diff(new("DateStyle", "iso, mdy", null, "t"), new(dateStyle, "ISO, MDY", "configuration file", false, "ISO, MDY"),
            new FileSetting("datestyle", "/data/postgresql.conf", 711, 7, "iso, mdy", null));
        Assert.Empty(diff.Changes);
        Assert.Empty(diff.Pending);
        var changed = Diff(new("DateStyle", "German, DMY", null, "t"), new(dateStyle, "ISO, MDY", "configuration file", false, "ISO, MDY"),
            new FileSetting("datestyle", "/data/postgresql.conf", 711, 7, "iso, mdy", null));
        Assert.Single(changed.Changes);
    }

    [Fact]
    public void Postmaster_setting_written_is_pending_restart_not_a_change()
    {
        var diff = Diff(new("archive_mode", "on", null, "t"), new(ArchiveMode, "off", "default", true, "off"), Auto("archive_mode", "on"));
        Assert.Empty(diff.Changes);
        var pending = Assert.Single(diff.Pending);
        Assert.Equal(Activation.Restart, pending.Needs);
        Assert.Contains("restart.policy is never", pending.Note);
    }

    [Fact]
    public void Postmaster_setting_change_is_marked_restart_required()
    {
        var diff = Diff(new("archive_mode", "on", null, "t"), new(ArchiveMode, "off", "default", false, "off"));
        Assert.Equal(Activation.Restart, Assert.Single(diff.Changes).Activation);
    }

    [Fact]
    public void Command_line_value_is_overridden_not_reissued()
    {
        var diff = Diff(new("archive_timeout", "5min", null, "t"), new(Timeout, "60", "command line", false, "0"), Auto("archive_timeout", "5min"));
        Assert.Empty(diff.Changes);
        Assert.Empty(diff.Pending);
        Assert.Contains("command line", Assert.Single(diff.Warnings).Message);
    }

    [Fact]
    public void File_read_after_auto_conf_is_overridden()
    {
        var later = new FileSetting("archive_timeout", "/etc/pg/late.conf", 7, 20, "60", null);
        var diff = Diff(new("archive_timeout", "5min", null, "t"), new(Timeout, "60", "configuration file", false, "0"), Auto("archive_timeout", "5min", 10), later);
        Assert.Empty(diff.Changes);
        Assert.Contains("/etc/pg/late.conf:7", Assert.Single(diff.Warnings).Message);
    }

    [Fact]
    public void Null_value_resets_a_parameter_present_in_auto_conf()
    {
        var diff = Diff(new("archive_timeout", null, null, "t"), new(Timeout, "300", "configuration file", false, "0"), Auto("archive_timeout", "300"));
        var change = Assert.Single(diff.Planned);
        Assert.Equal(ChangeAction.Delete, change.Change.Action);
        Assert.Equal(new SettingWrite("archive_timeout", null), change.Payload);
    }

    [Fact]
    public void Null_value_without_auto_conf_entry_is_no_change() =>
        Assert.Empty(Diff(new("archive_timeout", null, null, "t"), new(Timeout, "0", "default", false, "0")).Changes);
}
