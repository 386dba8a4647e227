using System.Text.Json.Nodes;
using PgState.Engine.Planning;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Hostile;

/// <summary>
/// A saved plan is data from outside: an edited, truncated, mistyped or foreign plan file is refused
/// with a clean error naming what is wrong, never applied to another cluster, never an internal error.
/// </summary>
[Collection(SharedClusterA.Name)]
public class PlanFileTamperingTests(ClusterFixture fixture) : IAsyncLifetime
{
    private readonly ScratchCluster _cluster = fixture.Cluster;
    private readonly TempDir _dir = new();

    public async Task InitializeAsync()
    {
        await fixture.BeginAsync(GetType());
        await _cluster.ResetAsync();
    }

    public Task DisposeAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Each case edits a fresh, valid saved plan (JSON tree or bytes) and names the error apply must give.</summary>
    public static readonly (string Kind, string Expected)[] Cases =
    [
        ("port edited", "modified after pgstate wrote it"),
        ("digest removed", "missing \"digest\""),
        ("digest edited", "modified after pgstate wrote it"),
        ("manifest hash edited", "modified after pgstate wrote it"),
        ("formatVersion as a string", "\"formatVersion\" must be an integer"),
        ("formatVersion 99", "formatVersion 99 is not supported"),
        ("truncated", "not valid JSON"),
        ("plans not a list", "expected a list"),
        ("unknown action", "\"action\" is \"destroy-everything\", not one of"),
        ("numeric action", "not one of"),
        ("too deep", "not valid JSON"),
        ("empty file", "not valid JSON"),
        ("binary garbage", "not valid JSON"),
        ("version 1 plan", "carries no digest"),
        ("other server, digest recomputed", "the plan was made for"),
        ("fifo", "not a regular file"),
        ("null change", "expected an object"),
        ("module breaks out of markdown", "\"module\" is not a module's name"),
        ("manifest path a device, digest recomputed", "is not a regular file"),
    ];

    public static TheoryData<string, string> Data()
    {
        var data = new TheoryData<string, string>();
        foreach (var (kind, expected) in Cases)
        {
            data.Add(kind, expected);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Data))]
    public async Task A_tampered_plan_file_is_refused_cleanly(string kind, string expected)
    {
        var file = _dir.Write("m.yaml", _cluster.Manifest("db", "  settings:\n    archive_timeout: 9min"));
        var planFile = Path.Combine(_dir.Path, "plan.json");
        Assert.Equal(2, (await CliRunner.RunAsync("plan", "--out", planFile, file)).ExitCode);
        var json = JsonNode.Parse(File.ReadAllText(planFile))!.AsObject();
        void Save() => File.WriteAllText(planFile, json.ToJsonString());
        switch (kind)
        {
            case "port edited":
                json["connectionOverrides"]!["port"] = 1;
                Save();
                break;
            case "digest removed":
                json.Remove("digest");
                Save();
                break;
            case "digest edited":
                json["digest"] = "sha256:" + new string('0', 64);
                Save();
                break;
            case "manifest hash edited":
                json["manifests"]![0]!["sha256"] = "sha256:" + new string('1', 64);
                Save();
                break;
            case "formatVersion as a string":
                json["formatVersion"] = "2";
                Save();
                break;
            case "formatVersion 99":
                json["formatVersion"] = 99;
                Save();
                break;
            case "truncated":
                File.WriteAllText(planFile, File.ReadAllText(planFile)[..200]);
                break;
            case "plans not a list":
                json["plans"] = "all of them";
                Save();
                break;
            case "unknown action":
                json["plans"]![0]!["changes"]![0]!["action"] = "destroy-everything";
                Save();
                break;
            case "numeric action":
                json["plans"]![0]!["changes"]![0]!["action"] = "3";
                Save();
                break;
            case "too deep":
                File.WriteAllText(planFile, new string('[', 5000) + new string(']', 5000));
                break;
            case "empty file":
                File.WriteAllText(planFile, "");
                break;
            case "binary garbage":
                File.WriteAllBytes(planFile, [0x00, 0xFF, 0xFE, 0x7B, 0x01]);
                break;
            case "version 1 plan":
                json["formatVersion"] = 1;
                json.Remove("digest");
                Save();
                break;
            case "other server, digest recomputed":
                json["plans"]![0]!["server"]!["dataDirectory"] = "/some/other/cluster";
                json.Remove("digest");
                Save();
                var saved = ReadWithoutDigest(planFile);
                json["digest"] = SavedPlanFormat.Digest(saved.Manifests, saved.Overrides, saved.Plans);
                Save();
                break;
            case "fifo":
                File.Delete(planFile);
                planFile = Path.Combine(_dir.Path, "fifo.json");
                await Engine.Host.ProcessRunner.Default.RunAsync("mkfifo", [planFile]);
                break;
            case "null change":
                json["plans"]![0]!["changes"]![0] = null;
                Save();
                break;
            case "module breaks out of markdown":
                // Shown in the fleet comment's tables and summaries: a name that closes them is refused at reading.
                json["plans"]![0]!["changes"]![0]!["module"] = "m |\n\n</details></details>\n\n## All hosts: No changes.";
                Save();
                break;
            case "manifest path a device, digest recomputed":
                // A digest anyone can recompute: the manifest it names is still read as a bounded regular file (not /dev/zero for ever).
                json["manifests"]![0]!["path"] = "/dev/zero";
                json.Remove("digest");
                Save();
                var forged = ReadWithoutDigest(planFile);
                json["digest"] = SavedPlanFormat.Digest(forged.Manifests, forged.Overrides, forged.Plans);
                Save();
                break;
        }
        var before = await HostState.CaptureAsync(_cluster);
        var result = await CliRunner.RunAsync("apply", planFile);
        Assert.True(result.ExitCode == 1, $"{kind}\n{result}");
        Assert.Contains(expected, result.Stderr);
        HostileInputTests.AssertClean(kind, result);
        Assert.Equal(before, await HostState.CaptureAsync(_cluster));
        Assert.Equal("0", await _cluster.ShowAsync("archive_timeout"));
    }

    /// <summary>A version-2 file read as version 1 (no digest check), to recompute a digest the way an attacker could.</summary>
    private static SavedPlan ReadWithoutDigest(string path)
    {
        var node = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        node["formatVersion"] = 1;
        var temp = path + ".v1";
        File.WriteAllText(temp, node.ToJsonString());
        try
        {
            return SavedPlanFormat.Read(temp);
        }
        finally
        {
            File.Delete(temp);
        }
    }
}
